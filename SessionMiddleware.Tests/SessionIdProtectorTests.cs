using System.Security.Cryptography;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Cookies;
using SessionMiddleware.Ids;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// The session cookie's secret ID is kept in memory for a minute after Data Protection unprotected it
/// (<see cref="RecentlyUnprotected.KeptFor"/>), so that a browser's next requests skip the unprotect.
/// </summary>
public sealed class SessionIdProtectorTests
{
    private FakeTimeProvider _time = null!;
    private SwitchableProvider _keys = null!;
    private SessionIdProtector _protector = null!;

    [SetUp]
    public void Create()
    {
        _time = StoreFactory.NewTime();
        _keys = new SwitchableProvider(new EphemeralDataProtectionProvider());
        _protector = new SessionIdProtector(_keys, _time);
    }

    [Test]
    public void ACookieReadTwice_GivesTheSameId_EachTimeACopy()
    {
        var secretId = SessionIds.NewSecretId(DateTimeOffset.UtcNow);
        var cookie = _protector.Protect(secretId);

        var first = _protector.Unprotect(cookie, out _)!;
        first[0] ^= 0xFF;
        var kept = _protector.Unprotect(cookie, out _)!;
        kept[1] ^= 0xFF;
        var second = _protector.Unprotect(cookie, out var reason);

        Assert.Multiple(() =>
        {
            Assert.That(reason, Is.Null);
            Assert.That(second, Is.EqualTo(secretId), "changing one answer does not change the next");
        });
    }

    [Test]
    public void ATamperedCopyOfACookieReadBefore_IsStillRejected()
    {
        var cookie = _protector.Protect(SessionIds.NewSecretId(DateTimeOffset.UtcNow));
        _protector.Unprotect(cookie, out _);
        var tampered = cookie[..^2] + (cookie[^2] == 'A' ? 'B' : 'A') + cookie[^1];

        Assert.Multiple(() =>
        {
            Assert.That(_protector.Unprotect(tampered, out var reason), Is.Null);
            Assert.That(reason, Is.Not.Null);
        });
    }

    [Test]
    public void ACookieWhoseKeyIsNoLongerAccepted_IsRejected_OnceItsMinuteInMemoryHasPassed()
    {
        var cookie = _protector.Protect(SessionIds.NewSecretId(DateTimeOffset.UtcNow));
        Assert.That(_protector.Unprotect(cookie, out _), Is.Not.Null);

        _keys.RejectAll = true;
        var withinTheMinute = _protector.Unprotect(cookie, out _);
        _time.Advance(RecentlyUnprotected.KeptFor + TimeSpan.FromSeconds(1));
        var afterIt = _protector.Unprotect(cookie, out var reason);

        Assert.Multiple(() =>
        {
            Assert.That(withinTheMinute, Is.Not.Null, "kept for a minute");
            Assert.That(afterIt, Is.Null);
            Assert.That(reason, Is.EqualTo(SessionIdProtector.NotOurKeyRing));
        });
    }

    [Test]
    public void AtMostMaxKeptCookiesAreKept_AndEveryCookieStillReads()
    {
        var ids = Enumerable.Range(0, RecentlyUnprotected.MaxKept + 10).Select(_ => SessionIds.NewSecretId(DateTimeOffset.UtcNow)).ToList();
        var cookies = ids.Select(_protector.Protect).ToList();

        for (var i = 0; i < cookies.Count; i++)
        {
            Assert.That(_protector.Unprotect(cookies[i], out _), Is.EqualTo(ids[i]));
        }

        Assert.That(_protector.KeptCount, Is.LessThanOrEqualTo(RecentlyUnprotected.MaxKept));
    }

    /// <summary>A key ring whose keys can be made to stop working (a revoked key), to inject that fault.</summary>
    private sealed class SwitchableProvider(IDataProtectionProvider inner) : IDataProtectionProvider, IDataProtector
    {
        private IDataProtector? _protector;

        public bool RejectAll { get; set; }

        public IDataProtector CreateProtector(string purpose)
        {
            _protector = inner.CreateProtector(purpose);
            return this;
        }

        public byte[] Protect(byte[] plaintext) => _protector!.Protect(plaintext);

        public byte[] Unprotect(byte[] protectedData) =>
            RejectAll ? throw new CryptographicException("The key was revoked.") : _protector!.Unprotect(protectedData);
    }
}
