using System.Security.Claims;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Authentication;
using SessionMiddleware.Cookies;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// The authentication cookie's reference ticket is kept in memory for a minute after Data Protection unprotected it, as
/// the session cookie's ID is: a signed-in browser's next requests skip that unprotect.
/// </summary>
public sealed class TicketReferenceFormatTests
{
    private FakeTimeProvider _time = null!;
    private bool _rejectAll;
    private TicketReferenceFormat _format = null!;

    [SetUp]
    public void Create()
    {
        _time = StoreFactory.NewTime();
        _rejectAll = false;
        var protector = new EphemeralDataProtectionProvider().CreateProtector("test");
        _format = new TicketReferenceFormat(new TicketDataFormat(new Switchable(protector, () => _rejectAll)), "Cookies", new HttpContextAccessor(), _time);
    }

    [Test]
    public void ACookieReadTwice_GivesTheSameTicket_EachTimeACopy()
    {
        var cookie = _format.Protect(Ticket("ref-1"));

        var first = _format.Unprotect(cookie)!;
        ((ClaimsIdentity)first.Principal.Identity!).AddClaim(new Claim("added", "by a transformation"));
        var kept = _format.Unprotect(cookie)!;
        ((ClaimsIdentity)kept.Principal.Identity!).AddClaim(new Claim("added", "by a transformation"));
        var third = _format.Unprotect(cookie)!;

        Assert.Multiple(() =>
        {
            Assert.That(third.Principal.FindFirst(TicketReferenceFormat.ReferenceClaimType)!.Value, Is.EqualTo("ref-1"));
            Assert.That(third.Principal.FindFirst("added"), Is.Null, "changing one answer does not change the next");
        });
    }

    [Test]
    public void ACookieWhoseKeyIsNoLongerAccepted_IsRejected_OnceItsMinuteInMemoryHasPassed()
    {
        var cookie = _format.Protect(Ticket("ref-2"));
        Assert.That(_format.Unprotect(cookie), Is.Not.Null);

        _rejectAll = true;
        var withinTheMinute = _format.Unprotect(cookie);
        _time.Advance(RecentlyUnprotected.KeptFor + TimeSpan.FromSeconds(1));

        Assert.Multiple(() =>
        {
            Assert.That(withinTheMinute, Is.Not.Null, "kept for a minute");
            Assert.That(_format.Unprotect(cookie), Is.Null);
        });
    }

    [Test]
    public void ATamperedCookie_IsRejected_AndNothingIsKeptForIt()
    {
        var cookie = _format.Protect(Ticket("ref-3"));
        _format.Unprotect(cookie);
        var tampered = cookie[..^2] + (cookie[^2] == 'A' ? 'B' : 'A') + cookie[^1];

        Assert.Multiple(() =>
        {
            Assert.That(_format.Unprotect(tampered), Is.Null);
            Assert.That(_format.KeptCount, Is.EqualTo(1), $"kept {_format.KeptCount}");
        });
    }

    private static AuthenticationTicket Ticket(string reference) =>
        new(new ClaimsPrincipal(new ClaimsIdentity([new Claim(TicketReferenceFormat.ReferenceClaimType, reference)], "Cookies")), "Cookies");

    private sealed class Switchable(IDataProtector inner, Func<bool> rejectAll) : IDataProtector
    {
        public IDataProtector CreateProtector(string purpose) => new Switchable(inner.CreateProtector(purpose), rejectAll);

        public byte[] Protect(byte[] plaintext) => inner.Protect(plaintext);

        public byte[] Unprotect(byte[] protectedData) => rejectAll() ? throw new CryptographicException("The key was revoked.") : inner.Unprotect(protectedData);
    }
}
