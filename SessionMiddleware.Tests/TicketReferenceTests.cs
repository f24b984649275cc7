using System.Net;
using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// Which authentication cookie names which sign-in on the ticket store (<c>AddTicketStore</c>), through ASP.NET Core's own
/// cookie handler on real Kestrel and a real SQLite file: an authentication cookie from before a sign-out, another user's
/// sign-in or an unbinding never authenticates the browser again, not even beside the browser's current session cookie; every
/// sign-in without a usable authentication cookie renews the session ID; another user's sign-in ends the helper schemes'
/// sign-ins.
/// </summary>
public sealed class TicketReferenceTests : TempFolderTest
{
    private const string AuthCookie = ".AspNetCore.Cookies";

    // A user switch in one request: the cookie handler passes RenewAsync the key of the cookie it read (aspnetcore#55634).
    [TestCase(true, "frank")]
    [TestCase(false, "frank")]
    [TestCase(true, "erin")]
    public async Task SignOutThenSignInInOneRequest_TheEarlierAuthCookieWithTheCurrentSessionCookie_IsAnonymous(bool ticketStoreFirst, string next)
    {
        await using var host = await StartAsync(ticketStoreFirst);
        var jar = new CookieContainer();
        var browser = host.CreateBrowser(jar);
        await browser.GetTextAsync("/signin?user=erin");
        var erinsAuthCookie = CookieValue(jar, AuthCookie);

        await browser.GetTextAsync("/switch?user=" + next);
        var erinsCookieNow = await host.CreateRawClient().GetTextAsync("/whoami", WithAuthCookie(jar, host, erinsAuthCookie));

        Assert.Multiple(async () =>
        {
            Assert.That(erinsCookieNow, Is.EqualTo("anonymous"), "a sign-out in between: erin's earlier auth cookie no longer matches");
            Assert.That(await browser.GetTextAsync("/whoami"), Is.EqualTo(next), "the new sign-in's own cookie authenticates");
            Assert.That(await browser.GetTextAsync("/whoami"), Is.EqualTo(next), "and keeps doing so");
        });
    }

    [TestCase(true)]
    [TestCase(false)]
    public async Task AnotherUsersSignInOverACurrentOne_TheEarlierAuthCookieWithTheCurrentSessionCookie_IsAnonymous(bool ticketStoreFirst)
    {
        await using var host = await StartAsync(ticketStoreFirst);
        var jar = new CookieContainer();
        var browser = host.CreateBrowser(jar);
        await browser.GetTextAsync("/signin?user=erin");
        var erinsAuthCookie = CookieValue(jar, AuthCookie);

        await browser.GetTextAsync("/signin?user=frank");
        var erinsCookieNow = await host.CreateRawClient().GetTextAsync("/whoami", WithAuthCookie(jar, host, erinsAuthCookie));

        Assert.Multiple(async () =>
        {
            Assert.That(erinsCookieNow, Is.EqualTo("anonymous"));
            Assert.That(await browser.GetTextAsync("/whoami"), Is.EqualTo("frank"));
        });
    }

    [Test]
    public async Task TheSameUsersSignInOverACurrentOne_KeepsTheReference()
    {
        await using var host = await StartAsync(ticketStoreFirst: true);
        var jar = new CookieContainer();
        var browser = host.CreateBrowser(jar);
        await browser.GetTextAsync("/signin?user=erin");
        var firstAuthCookie = CookieValue(jar, AuthCookie);

        await browser.GetTextAsync("/signin?user=erin");
        var firstCookieNow = await host.CreateRawClient().GetTextAsync("/whoami", WithAuthCookie(jar, host, firstAuthCookie));

        Assert.Multiple(async () =>
        {
            Assert.That(firstCookieNow, Is.EqualTo("erin"), "a renewal of the same sign-in: a request still in flight with the earlier cookie stays signed in");
            Assert.That(await browser.GetTextAsync("/whoami"), Is.EqualTo("erin"));
        });
    }

    [Test]
    public async Task AHelperSchemesSignOutThenSignInInOneRequest_TheEarlierHelperCookie_FindsNothing()
    {
        await using var host = await StartAsync(ticketStoreFirst: true);
        var jar = new CookieContainer();
        var browser = host.CreateBrowser(jar);
        await browser.GetTextAsync("/signin?user=erin");
        await browser.GetTextAsync("/signin-external?user=erin");
        var externalCookieName = jar.GetCookies(host.BaseAddress).Single(c => c.Name.Contains("External", StringComparison.Ordinal)).Name;
        var earlierExternalCookie = CookieValue(jar, externalCookieName);

        await browser.GetTextAsync("/switch-external?user=frank");
        var earlierNow = await host.CreateRawClient().GetTextAsync("/external", Replace(jar, host, externalCookieName, earlierExternalCookie));

        Assert.Multiple(async () =>
        {
            Assert.That(earlierNow, Is.EqualTo("none"));
            Assert.That(await browser.GetTextAsync("/external"), Is.EqualTo("external-frank"));
        });
    }

    // RetrieveAsync must compare the reference the session keeps with the cookie's: the session of this browser holds
    // erin's later sign-in, which the earlier cookie must not reach.
    [Test]
    public async Task AnAuthCookieFromBeforeASignOut_AfterTheSameUserSignsInAgain_IsAnonymous()
    {
        await using var host = await StartAsync(ticketStoreFirst: true);
        var jar = new CookieContainer();
        var browser = host.CreateBrowser(jar);
        await browser.GetTextAsync("/signin?user=erin");
        var earlierAuthCookie = CookieValue(jar, AuthCookie);
        await browser.GetTextAsync("/signout");

        await browser.GetTextAsync("/signin?user=erin");
        var earlierNow = await host.CreateRawClient().GetTextAsync("/whoami", WithAuthCookie(jar, host, earlierAuthCookie));

        Assert.Multiple(async () =>
        {
            Assert.That(earlierNow, Is.EqualTo("anonymous"));
            Assert.That(await browser.GetTextAsync("/whoami"), Is.EqualTo("erin"));
        });
    }

    // RetrieveAsync must check that the session is still bound to the ticket's user.
    [TestCase("")]
    [TestCase("mallory")]
    public async Task TheAppUnbindingOrRebindingTheSession_EndsTheSignIn(string user)
    {
        await using var host = await StartAsync(ticketStoreFirst: true);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/signin?user=erin");
        var before = await browser.GetTextAsync("/whoami");

        await browser.GetTextAsync("/bind?user=" + user);

        Assert.Multiple(async () =>
        {
            Assert.That(before, Is.EqualTo("erin"));
            Assert.That(await browser.GetTextAsync("/whoami"), Is.EqualTo("anonymous"), "the session no longer vouches for erin's sign-in");
        });
    }

    // Session fixation: whoever knew the session ID before a sign-in must not share the signed-in session, even when the
    // session was already bound to the same user (its authentication cookie lost, expired or from an earlier sign-in).
    [Test]
    public async Task TheSameUsersSignInWithoutAUsableAuthCookie_RenewsTheSessionId()
    {
        await using var host = await StartAsync(ticketStoreFirst: true);
        var jar = new CookieContainer();
        var browser = host.CreateBrowser(jar);
        await browser.GetTextAsync("/signin?user=erin");
        var before = await browser.GetTextAsync("/id");
        var sessionCookieBefore = jar.GetCookieHeader(host.BaseAddress).Split("; ").Single(c => c.StartsWith(host.CookieName + "=", StringComparison.Ordinal));
        DropCookie(jar, host, AuthCookie);

        await browser.GetTextAsync("/signin?user=erin");
        var after = await browser.GetTextAsync("/id");
        var oldSessionCookieNow = await host.CreateRawClient().GetTextAsync("/id", sessionCookieBefore);

        Assert.Multiple(async () =>
        {
            Assert.That(after, Is.Not.EqualTo(before), "a sign-in renews the session ID");
            Assert.That(oldSessionCookieNow, Is.Not.EqualTo(after), "the earlier session cookie does not reach the signed-in session");
            Assert.That(await browser.GetTextAsync("/whoami"), Is.EqualTo("erin"));
        });
    }

    // Another user's sign-in ends every sign-in of the previous user, the helper schemes' (Identity's external and
    // two-factor steps) included: through StoreAsync without an auth cookie, through RenewAsync with one.
    [TestCase(true)]
    [TestCase(false)]
    public async Task AnotherUsersSignIn_EndsThePreviousUsersHelperSignIns(bool withAuthCookie)
    {
        await using var host = await StartAsync(ticketStoreFirst: true);
        var jar = new CookieContainer();
        var browser = host.CreateBrowser(jar);
        await browser.GetTextAsync("/signin?user=erin");
        await browser.GetTextAsync("/signin-external?user=erin");
        var before = await browser.GetTextAsync("/external");
        if (!withAuthCookie)
        {
            DropCookie(jar, host, AuthCookie);
        }

        await browser.GetTextAsync("/signin?user=frank");

        Assert.Multiple(async () =>
        {
            Assert.That(before, Is.EqualTo("external-erin"));
            Assert.That(await browser.GetTextAsync("/whoami"), Is.EqualTo("frank"));
            Assert.That(await browser.GetTextAsync("/external"), Is.EqualTo("none"), "erin's external sign-in ended with frank's sign-in");
        });
    }

    /// <summary>
    /// The app of <see cref="AuthTestApp"/> with the endpoints these tests need, the ticket store registered before or after
    /// <c>AddCookie</c> (the order in which the post-configures of the ticket store and the cookie handler run).
    /// </summary>
    private async Task<SessionTestHost> StartAsync(bool ticketStoreFirst) =>
        await SessionTestHost.StartAsync(
            Folder.Path,
            services: s =>
            {
                if (ticketStoreFirst)
                {
                    s.AddTicketStore();
                }

                s.Services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme)
                    .AddCookie(o => o.Events.OnRedirectToLogin = c =>
                    {
                        c.Response.StatusCode = StatusCodes.Status401Unauthorized;
                        return Task.CompletedTask;
                    })
                    .AddCookie(IdentityConstants.ExternalScheme);
                if (!ticketStoreFirst)
                {
                    s.AddTicketStore();
                }

                s.Services.AddAuthorization();
            },
            endpoints: app =>
            {
                app.UseAuthentication();
                app.UseAuthorization();
                Map(app);
            },
            time: new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds())));

    private static void Map(WebApplication app)
    {
        app.MapGet("/signin", async (HttpContext c, string user) =>
        {
            await c.SignInAsync(User(user, CookieAuthenticationDefaults.AuthenticationScheme));
            return "signed in";
        });
        app.MapGet("/switch", async (HttpContext c, string user) =>
        {
            await c.SignOutAsync();
            await c.SignInAsync(User(user, CookieAuthenticationDefaults.AuthenticationScheme));
            return "switched";
        });
        app.MapGet("/signout", async (HttpContext c) =>
        {
            await c.SignOutAsync();
            return "signed out";
        });
        app.MapGet("/signin-external", async (HttpContext c, string user) =>
        {
            await c.SignInAsync(IdentityConstants.ExternalScheme, User("external-" + user, IdentityConstants.ExternalScheme));
            return "external";
        });
        app.MapGet("/switch-external", async (HttpContext c, string user) =>
        {
            await c.SignOutAsync(IdentityConstants.ExternalScheme);
            await c.SignInAsync(IdentityConstants.ExternalScheme, User("external-" + user, IdentityConstants.ExternalScheme));
            return "external";
        });
        app.MapGet("/external", async (HttpContext c) =>
            (await c.AuthenticateAsync(IdentityConstants.ExternalScheme)).Principal?.FindFirst(ClaimTypes.NameIdentifier)?.Value ?? "none");
        app.MapGet("/whoami", (HttpContext c) => c.User.Identity?.IsAuthenticated == true ? c.User.Identity.Name! : "anonymous");
    }

    private static ClaimsPrincipal User(string id, string scheme) =>
        new(new ClaimsIdentity([new Claim(ClaimTypes.NameIdentifier, id), new Claim(ClaimTypes.Name, id)], scheme));

    private static string CookieValue(CookieContainer jar, string name) =>
        jar.GetAllCookies().Single(c => c.Name == name).Value;

    /// <summary>The browser's current cookies (its current session cookie among them), with an earlier authentication cookie.</summary>
    private static string WithAuthCookie(CookieContainer jar, SessionTestHost host, string authCookie) => Replace(jar, host, AuthCookie, authCookie);

    private static string Replace(CookieContainer jar, SessionTestHost host, string name, string value) =>
        string.Join("; ", jar.GetCookieHeader(host.BaseAddress).Split("; ")
            .Where(c => !c.StartsWith(name + "=", StringComparison.Ordinal))
            .Append($"{name}={value}"));

    private static void DropCookie(CookieContainer jar, SessionTestHost host, string name)
    {
        jar.GetCookies(host.BaseAddress)[name]!.Expired = true;
        Assert.That(jar.GetCookieHeader(host.BaseAddress), Does.Not.Contain(name + "="));
    }
}
