using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests.SignIn;

/// <summary>
/// A change of Identity's security stamp ends the user's other sessions at once (no clock advance: not after the security
/// stamp validator's interval), through Identity's own UserManager and SignInManager, with two browsers on real Kestrel
/// and a real SQLite file.
/// </summary>
public sealed class CredentialChangeTests : TempFolderTest
{
    private const string UserId = "id-erin";

    [Test]
    public async Task ChangePassword_EndsTheOtherBrowsersSession_AndTheChangingBrowserStaysSignedIn()
    {
        var app = new IdentitySignInApp();
        await using var host = await app.StartAsync(Folder.Path);
        var (a, b) = await TwoBrowsersSignedInAsync(host);

        var changed = await a.GetTextAsync("/identity/change-password?current=secret-pass&next=new-secret-pass");
        var bAfter = await b.GetTextAsync("/whoami");
        var aAfter = await a.GetTextAsync("/whoami");
        var sessions = await host.Services.GetRequiredService<ISessionManager>().ListForUserAsync(UserId);

        Assert.Multiple(async () =>
        {
            Assert.That(changed, Is.EqualTo("changed"));
            Assert.That(bAfter, Is.EqualTo("anonymous"), "the other browser is signed out on its next request");
            Assert.That(app.EndReasons, Is.EqualTo(new[] { SessionEndReason.CredentialsChanged }));
            Assert.That(aAfter, Is.EqualTo("erin"), "the browser that changed the password stays signed in");
            Assert.That(sessions.Select(s => s.Id), Is.EqualTo(new[] { await a.GetTextAsync("/id") }), "one session left: the changing browser's");
        });
    }

    [Test]
    public async Task ChangePassword_WithIdentitysStampUnderAnotherClaimType_EndsTheOtherSession()
    {
        // The ticket store reads the stamp under Identity's configured claim type.
        var app = new IdentitySignInApp();
        await using var host = await app.StartAsync(Folder.Path, identity: o => o.ClaimsIdentity.SecurityStampClaimType = "app-stamp");
        var (a, b) = await TwoBrowsersSignedInAsync(host);

        await a.GetTextAsync("/identity/change-password?current=secret-pass&next=new-secret-pass");

        Assert.Multiple(async () =>
        {
            Assert.That(await b.GetTextAsync("/whoami"), Is.EqualTo("anonymous"));
            Assert.That(await a.GetTextAsync("/whoami"), Is.EqualTo("erin"));
        });
    }

    [Test]
    public async Task AProfileUpdate_ThatKeepsTheStamp_EndsNothing_AlsoAfterAPasswordChange()
    {
        var app = new IdentitySignInApp();
        await using var host = await app.StartAsync(Folder.Path);
        var (a, b) = await TwoBrowsersSignedInAsync(host);

        var saved = await a.GetTextAsync("/identity/profile?name=Erin");
        var afterProfile = (await a.GetTextAsync("/whoami"), await b.GetTextAsync("/whoami"));

        // After a password change the changing browser's session records the new stamp (RefreshSignInAsync): a later update
        // that keeps the stamp, even from a background job, leaves it and a new sign-in alone.
        await a.GetTextAsync("/identity/change-password?current=secret-pass&next=new-secret-pass");
        var c = host.CreateBrowser();
        await c.GetTextAsync("/identity/signin?user=erin&password=new-secret-pass");
        await UpdateInBackgroundAsync(host, u => u.DisplayName = "Erin E.");
        var afterBackgroundUpdate = (await a.GetTextAsync("/whoami"), await c.GetTextAsync("/whoami"));

        Assert.Multiple(() =>
        {
            Assert.That(saved, Is.EqualTo("saved"));
            Assert.That(afterProfile, Is.EqualTo(("erin", "erin")));
            Assert.That(afterBackgroundUpdate, Is.EqualTo(("erin", "erin")));
            Assert.That(app.EndReasons, Is.EqualTo(new[] { SessionEndReason.CredentialsChanged }), "only the password change ended a session (b's)");
        });
    }

    [Test]
    public async Task UpdateSecurityStamp_FromABackgroundCall_EndsEverySessionOfTheUser_AndNoOneElses()
    {
        var app = new IdentitySignInApp();
        await using var host = await app.StartAsync(Folder.Path);
        var (a, b) = await TwoBrowsersSignedInAsync(host);
        var other = host.CreateBrowser();
        await other.GetTextAsync("/identity/register?user=finn&password=secret-pass");
        await other.GetTextAsync("/identity/signin?user=finn&password=secret-pass");

        // No request: a background job or an admin tool (the user manager of a scope of its own).
        using (var scope = host.Services.CreateScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<UserManager<SignInTestUser>>();
            Assert.That((await users.UpdateSecurityStampAsync((await users.FindByIdAsync(UserId))!)).Succeeded);
        }

        Assert.Multiple(async () =>
        {
            Assert.That(await a.GetTextAsync("/whoami"), Is.EqualTo("anonymous"));
            Assert.That(await b.GetTextAsync("/whoami"), Is.EqualTo("anonymous"));
            Assert.That(await other.GetTextAsync("/whoami"), Is.EqualTo("finn"), "another user's sessions stay");
            Assert.That(app.EndReasons, Is.EqualTo(new[] { SessionEndReason.CredentialsChanged, SessionEndReason.CredentialsChanged }));
        });
    }

    [Test]
    public async Task TurningOnTwoFactor_EndsTheOtherSessions_WithIdentityRegisteredBeforeTheTicketStore()
    {
        var app = new IdentitySignInApp();
        await using var host = await app.StartAsync(Folder.Path, identityFirst: true);
        var (a, b) = await TwoBrowsersSignedInAsync(host);

        await a.GetTextAsync("/identity/two-factor?enabled=true");

        Assert.Multiple(async () =>
        {
            Assert.That(await b.GetTextAsync("/whoami"), Is.EqualTo("anonymous"));
            Assert.That(await a.GetTextAsync("/whoami"), Is.EqualTo("erin"));
            Assert.That(app.EndReasons, Is.EqualTo(new[] { SessionEndReason.CredentialsChanged }));
        });
    }

    [Test]
    public async Task AddTicketStoreTwice_RegistersTheValidatorOnce()
    {
        var app = new IdentitySignInApp();
        await using var host = await app.StartAsync(Folder.Path, identityFirst: true, more: s => s.AddTicketStore());
        using var scope = host.Services.CreateScope();

        var validators = scope.ServiceProvider.GetServices<IUserValidator<SignInTestUser>>().Select(v => v.GetType().Name).ToList();

        Assert.That(validators.Count(n => n.StartsWith("CredentialChangeValidator", StringComparison.Ordinal)), Is.EqualTo(1), string.Join(", ", validators));
    }

    [Test]
    public async Task ASignInAndAChangeOfStampInOneRequest_KeepTheRequestsBrowserSignedIn()
    {
        var app = new IdentitySignInApp();
        await using var host = await app.StartAsync(Folder.Path);
        var (a, b) = await TwoBrowsersSignedInAsync(host);

        // The sign-in renews a's session ID; the row is stored under the old one until the response: that row stays.
        var signedIn = await a.GetTextAsync("/identity/signin-then-stamp?user=erin&password=secret-pass");

        Assert.Multiple(async () =>
        {
            Assert.That(signedIn, Is.EqualTo("Succeeded"));
            Assert.That(await a.GetTextAsync("/whoami"), Is.EqualTo("erin"));
            Assert.That(await b.GetTextAsync("/whoami"), Is.EqualTo("anonymous"));
        });
    }

    /// <summary>Erin registered, signed in on two browsers.</summary>
    private static async Task<(HttpClient A, HttpClient B)> TwoBrowsersSignedInAsync(SessionTestHost host)
    {
        var a = host.CreateBrowser();
        var b = host.CreateBrowser();
        Assert.That(await a.GetTextAsync("/identity/register?user=erin&password=secret-pass"), Is.EqualTo("ok"));
        Assert.That(await a.GetTextAsync("/identity/signin?user=erin&password=secret-pass"), Is.EqualTo("Succeeded"));
        Assert.That(await b.GetTextAsync("/identity/signin?user=erin&password=secret-pass"), Is.EqualTo("Succeeded"));
        Assert.That((await a.GetTextAsync("/whoami"), await b.GetTextAsync("/whoami")), Is.EqualTo(("erin", "erin")));
        return (a, b);
    }

    private static async Task UpdateInBackgroundAsync(SessionTestHost host, Action<SignInTestUser> change)
    {
        using var scope = host.Services.CreateScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<SignInTestUser>>();
        var user = (await users.FindByIdAsync(UserId))!;
        change(user);
        Assert.That((await users.UpdateAsync(user)).Succeeded);
    }
}
