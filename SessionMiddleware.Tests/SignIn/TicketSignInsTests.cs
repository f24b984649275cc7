using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.DataProtection;
using SessionMiddleware.Authentication;
using SessionMiddleware.Session;

namespace SessionMiddleware.Tests.SignIn;

/// <summary>How the ticket store tells a sign-in again from a sliding renewal or a refresh (<see cref="TicketSignIns"/>).</summary>
public sealed class TicketSignInsTests
{
    private const string Key = "reference-1";

    private readonly IDataProtector _protector = new EphemeralDataProtectionProvider().CreateProtector("tests");

    [Test]
    public void ANewTicketOverAMarkedOne_IsASignInAgain()
    {
        Assert.That(TicketSignIns.IsSignInAgain(Ticket(marked: false), Kept(Ticket(marked: true)), Key, _protector), Is.True);
    }

    [Test]
    public void AMarkedTicket_IsARenewalOrARefresh_NotASignIn()
    {
        Assert.That(TicketSignIns.IsSignInAgain(Ticket(marked: true), Kept(Ticket(marked: true)), Key, _protector), Is.False);
    }

    [Test]
    public void OverATicketKeptBeforeTheMark_NothingIsASignIn()
    {
        // Its sliding renewal carries no mark either: taking it for a sign-in would grant a recent sign-in for nothing.
        Assert.That(TicketSignIns.IsSignInAgain(Ticket(marked: false), Kept(Ticket(marked: false)), Key, _protector), Is.False);
    }

    [Test]
    public void OverNoKeptTicket_OrOneUnderAnotherReference_OrAnUnreadableOne_NothingIsASignIn()
    {
        var otherKeys = new EphemeralDataProtectionProvider().CreateProtector("tests");

        Assert.Multiple(() =>
        {
            Assert.That(TicketSignIns.IsSignInAgain(Ticket(marked: false), null, Key, _protector), Is.False);
            Assert.That(TicketSignIns.IsSignInAgain(Ticket(marked: false), Kept(Ticket(marked: true)) with { Id = "reference-2" }, Key, _protector), Is.False);
            Assert.That(TicketSignIns.IsSignInAgain(Ticket(marked: false), Kept(Ticket(marked: true), otherKeys), Key, _protector), Is.False);
        });
    }

    [Test]
    public void WithNewStamp_RecordsAChangedStampAtTheRecordedTime_AndNothingElse()
    {
        var at = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);
        var recorded = new SessionSignIn(at, CredentialStamp: "old");

        Assert.Multiple(() =>
        {
            Assert.That(TicketSignIns.WithNewStamp(recorded, new SessionSignIn(default, CredentialStamp: "new")), Is.EqualTo(new SessionSignIn(at, CredentialStamp: "new")));
            Assert.That(TicketSignIns.WithNewStamp(recorded, new SessionSignIn(default, CredentialStamp: "old")), Is.Null, "the same stamp");
            Assert.That(TicketSignIns.WithNewStamp(recorded, new SessionSignIn(default)), Is.Null, "a ticket without a stamp");
            Assert.That(TicketSignIns.WithNewStamp(new SessionSignIn(at), new SessionSignIn(default, CredentialStamp: "new")), Is.Null, "a sign-in that recorded none");
            Assert.That(TicketSignIns.WithNewStamp(null, new SessionSignIn(default, CredentialStamp: "new")), Is.Null, "no sign-in recorded");
        });
    }

    private static AuthenticationTicket Ticket(bool marked)
    {
        var ticket = new AuthenticationTicket(new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.NameIdentifier, "erin")], "test")), "test");
        if (marked)
        {
            TicketSignIns.MarkKept(ticket);
        }

        return ticket;
    }

    private SessionTicket Kept(AuthenticationTicket ticket, IDataProtector? protector = null) =>
        new(Key, null, (protector ?? _protector).Protect(TicketSerializer.Default.Serialize(ticket)));
}
