using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using SessionMiddleware.Diagnostics;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests.SignIn;

/// <summary>
/// <c>RequireRecentSignIn</c> with Identity on real Kestrel and a fake clock: an older sign-in is challenged (Identity's
/// login page, with the return URL), a new sign-in lets the user in, and neither a sliding renewal nor a refresh of the
/// sign-in counts as one.
/// </summary>
public sealed class RecentSignInTests : TempFolderTest
{
    [Test]
    public async Task ASignInTenMinutesOld_IsSentToTheLoginPage_AndSigningInAgainLetsItIn()
    {
        await using var host = await new IdentitySignInApp().StartAsync(Folder.Path);
        using var challenges = new MetricCollector<long>(host.Services.GetRequiredService<IMeterFactory>(), ServerSideSessionDiagnostics.MeterName, SessionMetrics.RecentSignInChallenges);
        var browser = await SignedInBrowserAsync(host);
        using var fresh = await browser.GetAsync("/security");

        host.Time.Advance(TimeSpan.FromMinutes(10));
        using var old = await browser.GetAsync("/security?tab=password");
        var stillSignedIn = await browser.GetTextAsync("/whoami");
        var again = await browser.GetTextAsync("/identity/signin?user=erin&password=secret-pass");
        using var afterSignIn = await browser.GetAsync("/security?tab=password");

        Assert.Multiple(async () =>
        {
            Assert.That(fresh.StatusCode, Is.EqualTo(HttpStatusCode.OK), "a sign-in of a moment ago passes");
            Assert.That(old.StatusCode, Is.EqualTo(HttpStatusCode.Redirect), "a challenge, not 403");
            Assert.That(old.Headers.Location?.AbsolutePath, Is.EqualTo("/Account/Login"), "Identity's login path, not its access-denied path");
            Assert.That(old.Headers.Location?.Query, Is.EqualTo("?ReturnUrl=%2Fsecurity%3Ftab%3Dpassword"));
            Assert.That(stillSignedIn, Is.EqualTo("erin"), "the challenge signs no one out");
            Assert.That(again, Is.EqualTo("Succeeded"));
            Assert.That(afterSignIn.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(await afterSignIn.Content.ReadAsStringAsync(), Is.EqualTo("security settings"));
            Assert.That(challenges.GetMeasurementSnapshot().Sum(m => m.Value), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task TheAuthorizeAttribute_WithThePolicy_ChallengesAnOldSignIn()
    {
        await using var host = await new IdentitySignInApp().StartAsync(Folder.Path);
        var browser = await SignedInBrowserAsync(host);
        using var fresh = await browser.GetAsync("/security-attribute");

        host.Time.Advance(IdentitySignInApp.RecentSignIn + TimeSpan.FromSeconds(1));
        using var old = await browser.GetAsync("/security-attribute");

        Assert.Multiple(() =>
        {
            Assert.That(fresh.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(old.StatusCode, Is.EqualTo(HttpStatusCode.Redirect));
            Assert.That(old.Headers.Location?.AbsolutePath, Is.EqualTo("/Account/Login"));
        });
    }

    [Test]
    public async Task ASignInExactlyAsOldAsAllowed_Passes()
    {
        await using var host = await new IdentitySignInApp().StartAsync(Folder.Path);
        var browser = await SignedInBrowserAsync(host);

        host.Time.Advance(IdentitySignInApp.RecentSignIn);
        using var response = await browser.GetAsync("/security");

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
    }

    [Test]
    public async Task APolicyThatAlsoFailsForAnotherReason_StillForbids()
    {
        await using var host = await new IdentitySignInApp().StartAsync(Folder.Path);
        var browser = await SignedInBrowserAsync(host);

        host.Time.Advance(TimeSpan.FromMinutes(10));
        using var response = await browser.GetAsync("/security-admin");

        Assert.That(response.Headers.Location?.AbsolutePath, Is.EqualTo("/Account/AccessDenied"), "signing in again would not grant the claim");
    }

    [Test]
    public async Task APolicyWhoseOtherHandlerCallsFail_StillForbids()
    {
        await using var host = await new IdentitySignInApp().StartAsync(Folder.Path);
        var browser = await SignedInBrowserAsync(host);

        host.Time.Advance(TimeSpan.FromMinutes(10));
        using var response = await browser.GetAsync("/security-blocked");

        Assert.That(response.Headers.Location?.AbsolutePath, Is.EqualTo("/Account/AccessDenied"));
    }

    [Test]
    public async Task TheAppsOwnResultHandler_RegisteredBefore_IsWrapped_AndAddTicketStoreTwiceCountsOnce()
    {
        var own = new CountingResultHandler();
        await using var host = await new IdentitySignInApp().StartAsync(
            Folder.Path, before: s => s.AddSingleton<IAuthorizationMiddlewareResultHandler>(own), more: s => s.AddTicketStore());
        using var challenges = new MetricCollector<long>(host.Services.GetRequiredService<IMeterFactory>(), ServerSideSessionDiagnostics.MeterName, SessionMetrics.RecentSignInChallenges);
        var browser = await SignedInBrowserAsync(host);

        host.Time.Advance(TimeSpan.FromMinutes(10));
        using var response = await browser.GetAsync("/security");

        Assert.Multiple(() =>
        {
            Assert.That(response.Headers.Location?.AbsolutePath, Is.EqualTo("/Account/Login"));
            Assert.That(own.Calls, Is.EqualTo(1), "the app's handler answered the challenge");
            Assert.That(challenges.GetMeasurementSnapshot().Sum(m => m.Value), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task AnAnonymousVisitor_IsChallenged()
    {
        await using var host = await new IdentitySignInApp().StartAsync(Folder.Path);

        using var response = await host.CreateBrowser().GetAsync("/security");

        Assert.Multiple(() =>
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Redirect));
            Assert.That(response.Headers.Location?.AbsolutePath, Is.EqualTo("/Account/Login"));
        });
    }

    [Test]
    public async Task ASlidingRenewal_DoesNotMoveTheSignInTime()
    {
        var app = new IdentitySignInApp();
        await using var host = await app.StartAsync(Folder.Path, cookie: o =>
        {
            o.ExpireTimeSpan = TimeSpan.FromMinutes(8);
            o.SlidingExpiration = true;
        });
        var browser = await SignedInBrowserAsync(host);
        var signedInAt = await browser.GetTextAsync("/signed-in-at");

        host.Time.Advance(TimeSpan.FromMinutes(5));   // past half the cookie's lifetime: the handler renews the ticket
        using var renewing = await browser.GetAsync("/whoami");
        var afterRenewal = await browser.GetTextAsync("/signed-in-at");
        host.Time.Advance(TimeSpan.FromMinutes(5));   // 10 minutes after the sign-in, 5 after the renewal
        var stillSignedIn = await browser.GetTextAsync("/whoami");
        using var security = await browser.GetAsync("/security");

        Assert.Multiple(() =>
        {
            Assert.That(renewing.SetCookies(IdentityConstants.ApplicationScheme.Insert(0, ".AspNetCore.")), Has.Count.EqualTo(1), "the cookie handler renewed the sign-in");
            Assert.That(signedInAt, Is.EqualTo(host.Time.GetUtcNow().AddMinutes(-10).ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)));
            Assert.That(afterRenewal, Is.EqualTo(signedInAt));
            Assert.That(stillSignedIn, Is.EqualTo("erin"), "the renewed ticket is valid past the first one's expiry");
            Assert.That(security.StatusCode, Is.EqualTo(HttpStatusCode.Redirect), "the renewal did not count as a sign-in");
        });
    }

    [Test]
    public async Task RefreshSignIn_AndAPasswordChange_DoNotMoveTheSignInTime()
    {
        await using var host = await new IdentitySignInApp().StartAsync(Folder.Path);
        var browser = await SignedInBrowserAsync(host);
        var signedInAt = await browser.GetTextAsync("/signed-in-at");
        var sessionId = await browser.GetTextAsync("/id");

        host.Time.Advance(TimeSpan.FromMinutes(10));
        var refreshed = await browser.GetTextAsync("/identity/refresh");
        var afterRefresh = (await browser.GetTextAsync("/signed-in-at"), await browser.GetTextAsync("/id"));
        var changed = await browser.GetTextAsync("/identity/change-password?current=secret-pass&next=new-secret-pass");
        var afterChange = await browser.GetTextAsync("/signed-in-at");
        using var security = await browser.GetAsync("/security");

        Assert.Multiple(() =>
        {
            Assert.That(refreshed, Is.EqualTo("refreshed"));
            Assert.That(afterRefresh, Is.EqualTo((signedInAt, sessionId)), "a refresh with the same stamp records nothing");
            Assert.That(changed, Is.EqualTo("changed"));
            Assert.That(afterChange, Is.EqualTo(signedInAt), "the new stamp is recorded, not a new sign-in");
            Assert.That(security.StatusCode, Is.EqualTo(HttpStatusCode.Redirect));
        });
    }

    [Test]
    public void RequireRecentSignIn_RefusesAMaxAgeOfZeroOrLess()
    {
        var builder = new AuthorizationPolicyBuilder();

        var zero = Assert.Throws<ArgumentOutOfRangeException>(() => builder.RequireRecentSignIn(TimeSpan.Zero));
        Assert.Throws<ArgumentOutOfRangeException>(() => builder.RequireRecentSignIn(TimeSpan.FromSeconds(-1)));
        Assert.That(zero!.ParamName, Is.EqualTo("maxAge"));
    }

    private static async Task<HttpClient> SignedInBrowserAsync(SessionTestHost host)
    {
        var browser = host.CreateBrowser();
        Assert.That(await browser.GetTextAsync("/identity/register?user=erin&password=secret-pass"), Is.EqualTo("ok"));
        Assert.That(await browser.GetTextAsync("/identity/signin?user=erin&password=secret-pass"), Is.EqualTo("Succeeded"));
        return browser;
    }

    /// <summary>An app's own result handler: counts, then does what the framework's does.</summary>
    private sealed class CountingResultHandler : IAuthorizationMiddlewareResultHandler
    {
        private readonly AuthorizationMiddlewareResultHandler _default = new();

        public int Calls;

        public Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
        {
            Interlocked.Increment(ref Calls);
            return _default.HandleAsync(next, context, policy, authorizeResult);
        }
    }
}
