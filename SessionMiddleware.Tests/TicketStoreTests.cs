using System.Net;
using System.Text;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// ASP.NET Core cookie authentication on the server-side session (<c>AddTicketStore</c>), end to end on real Kestrel and
/// a real SQLite file: the session row governs the sign-in.
/// </summary>
public sealed class TicketStoreTests : TempFolderTest
{
    private const string AuthCookie = ".AspNetCore.Cookies";

    private static FakeTimeProvider Now() => new(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));

    [Test]
    public void HttpContextAccessor_IsRegisteredByAddTicketStore_NotByAddServerSideSessions()
    {
        // The accessor costs every request of the app; only the ticket store (called by cookie authentication without the
        // request) needs it.
        var sessionsOnly = new ServiceCollection();
        sessionsOnly.AddServerSideSessions();
        var withTickets = new ServiceCollection();
        withTickets.AddServerSideSessions().AddTicketStore();

        Assert.Multiple(() =>
        {
            Assert.That(sessionsOnly.Any(d => d.ServiceType == typeof(Microsoft.AspNetCore.Http.IHttpContextAccessor)), Is.False);
            Assert.That(withTickets.Any(d => d.ServiceType == typeof(Microsoft.AspNetCore.Http.IHttpContextAccessor)), Is.True);
        });
    }

    [Test]
    public async Task SignIn_ThenRevokeFromAnotherClient_TheNextRequestIsAnonymousAnd401()
    {
        await using var host = await AuthTestApp.StartAsync(Folder.Path);
        var erin = host.CreateBrowser();
        var admin = host.CreateBrowser();
        await erin.GetTextAsync("/signin?user=erin");
        using var before = await erin.GetAsync("/admin-only");

        var ended = await admin.GetTextAsync("/revoke?user=erin");
        using var after = await erin.GetAsync("/admin-only");

        Assert.Multiple(async () =>
        {
            Assert.That(before.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(ended, Is.EqualTo("1"));
            Assert.That(after.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized), "the auth cookie alone is worth nothing");
            Assert.That(await erin.GetTextAsync("/whoami"), Is.EqualTo("anonymous"));
        });
    }

    [Test]
    public async Task SignOut_DeletesTheRow_AndExpiresBothCookies()
    {
        await using var host = await AuthTestApp.StartAsync(Folder.Path);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/signin?user=erin");
        Assert.That(host.CountRows(), Is.EqualTo(1));

        using var response = await browser.GetAsync("/signout");

        Assert.Multiple(async () =>
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(host.CountRows(), Is.Zero, "the session row ended with the sign-out");
            Assert.That(response.SetCookies(AuthCookie).Single(), Does.Contain("expires=Thu, 01 Jan 1970"));
            Assert.That(response.SetCookies(host.CookieName).Single(), Does.Contain("expires=Thu, 01 Jan 1970"));
            Assert.That(await browser.GetTextAsync("/whoami"), Is.EqualTo("anonymous"));
        });
    }

    [Test]
    public async Task SignIn_RenewsTheSessionId_KeepsItsData_AndBindsTheUser()
    {
        await using var host = await AuthTestApp.StartAsync(Folder.Path);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=cart&value=apples");
        var anonymousId = await browser.GetTextAsync("/id");

        await browser.GetTextAsync("/signin?user=erin");
        var signedInId = await browser.GetTextAsync("/id");
        var sessions = await host.Services.GetRequiredService<ISessionManager>().ListForUserAsync("erin");

        Assert.Multiple(async () =>
        {
            Assert.That(signedInId, Is.Not.EqualTo(anonymousId), "fixation: the ID is renewed at sign-in");
            Assert.That(await browser.GetTextAsync("/get?key=cart"), Is.EqualTo("apples"));
            Assert.That(await browser.GetTextAsync("/keys"), Is.EqualTo("cart"), "the ticket is not among the session's keys");
            Assert.That(sessions.Select(s => s.Id), Is.EqualTo(new[] { signedInId }));
            Assert.That(host.CountRows(), Is.EqualTo(1), "one row per browser");
        });
    }

    [Test]
    public async Task SignIn_AsAnotherUserOnTheSameBrowser_EndsThePreviousUsersSignIn()
    {
        await using var host = await AuthTestApp.StartAsync(Folder.Path);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/signin?user=erin");

        await browser.GetTextAsync("/signin?user=frank");
        var manager = host.Services.GetRequiredService<ISessionManager>();

        Assert.Multiple(async () =>
        {
            Assert.That(await browser.GetTextAsync("/whoami"), Is.EqualTo("frank"));
            Assert.That(await manager.ListForUserAsync("erin"), Is.Empty);
            Assert.That(await manager.ListForUserAsync("frank"), Has.Count.EqualTo(1));
        });
    }

    [Test]
    public async Task NonPersistentSignIn_EndsAtTheIdleTimeout()
    {
        var time = Now();
        await using var host = await AuthTestApp.StartAsync(Folder.Path, time, configure: o => o.IdleTimeout = TimeSpan.FromMinutes(20));
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/signin?user=erin");

        time.Advance(TimeSpan.FromMinutes(19));
        var within = await browser.GetTextAsync("/whoami");
        time.Advance(TimeSpan.FromMinutes(21));
        var after = await browser.GetTextAsync("/whoami");

        Assert.Multiple(() =>
        {
            Assert.That(within, Is.EqualTo("erin"));
            Assert.That(after, Is.EqualTo("anonymous"), "idle 21 minutes: the session, and the sign-in with it, ended");
        });
    }

    [Test]
    public async Task RememberMe_SurvivesABrowserRestartAndAnIdleGap_AndEndsAtTheTicketsExpiry()
    {
        var time = Now();
        await using var host = await AuthTestApp.StartAsync(
            Folder.Path,
            time,
            cookie: o => o.ExpireTimeSpan = TimeSpan.FromDays(7),
            configure: o => o.IdleTimeout = TimeSpan.FromMinutes(20));
        var cookies = new CookieContainer();
        var browser = host.CreateBrowser(cookies);
        using (var signIn = await browser.GetAsync("/signin?user=erin&remember=true"))
        {
            Assert.That(signIn.SetCookies(host.CookieName).Single(), Does.Contain("expires="), "the session cookie is persistent too");
        }

        // A browser restart: only persistent cookies are left; then two days without a visit.
        var restarted = host.CreateBrowser(PersistentOnly(cookies, host.BaseAddress));
        time.Advance(TimeSpan.FromDays(2));
        var afterTwoDays = await restarted.GetTextAsync("/whoami");
        time.Advance(TimeSpan.FromDays(6));
        var afterEightDays = await restarted.GetTextAsync("/whoami");

        Assert.Multiple(() =>
        {
            Assert.That(afterTwoDays, Is.EqualTo("erin"), "remembered past IdleTimeout and a browser restart");
            Assert.That(afterEightDays, Is.EqualTo("anonymous"), "ended at the ticket's expiry (7 days)");
        });
    }

    [Test]
    public async Task SlidingRenewal_UpdatesTheTicketInTheSameRow()
    {
        var time = Now();
        await using var host = await AuthTestApp.StartAsync(
            Folder.Path,
            time,
            cookie: o =>
            {
                o.ExpireTimeSpan = TimeSpan.FromMinutes(10);
                o.SlidingExpiration = true;
            },
            configure: o => o.IdleTimeout = TimeSpan.FromMinutes(20));
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/signin?user=erin");

        // Past half of the ticket's 10 minutes, each visit renews it; 24 minutes in all, past its first expiry.
        for (var i = 0; i < 4; i++)
        {
            time.Advance(TimeSpan.FromMinutes(6));
            Assert.That(await browser.GetTextAsync("/whoami"), Is.EqualTo("erin"), $"visit {i + 1}");
        }

        Assert.That(host.CountRows(), Is.EqualTo(1), "renewals replace the ticket in the browser's one row");
    }

    [Test]
    public async Task TheDatabaseFile_HoldsNoClaimValueInPlainText()
    {
        await using var host = await AuthTestApp.StartAsync(Folder.Path);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/signin?user=erin&remember=true");
        await browser.GetTextAsync("/whoami");
        await host.ReleaseConnectionsAsync();

        var bytes = await ReadAllDatabaseBytesAsync(host.DatabasePath);

        Assert.Multiple(() =>
        {
            Assert.That(Contains(bytes, "erin"), Is.True, "the user ID is stored in user_id, to list and revoke by");
            Assert.That(Contains(bytes, AuthTestApp.SecretEmail), Is.False, "the email claim");
            Assert.That(Contains(bytes, AuthTestApp.SecretRole), Is.False, "the role claim");
        });
    }

    [TestCase("garbage")]
    [TestCase("CfDJ8AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    public async Task ATamperedAuthCookie_IsAnonymous_Never500(string value)
    {
        await using var host = await AuthTestApp.StartAsync(Folder.Path);
        var cookies = new CookieContainer();
        var browser = host.CreateBrowser(cookies);
        await browser.GetTextAsync("/signin?user=erin");
        var session = host.CreateRawClient();
        var sessionCookie = cookies.GetCookieHeader(host.BaseAddress);

        using var whoami = await session.SendWithCookieAsync("/whoami", ReplaceCookie(sessionCookie, AuthCookie, value));
        using var admin = await session.SendWithCookieAsync("/admin-only", ReplaceCookie(sessionCookie, AuthCookie, value));

        Assert.Multiple(async () =>
        {
            Assert.That(whoami.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(await whoami.Content.ReadAsStringAsync(), Is.EqualTo("anonymous"));
            Assert.That(admin.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
        });
    }

    [Test]
    public async Task AnAuthCookieOfAnotherBrowser_DoesNotSignInThisBrowsersSession()
    {
        await using var host = await AuthTestApp.StartAsync(Folder.Path);
        var erinCookies = new CookieContainer();
        await host.CreateBrowser(erinCookies).GetTextAsync("/signin?user=erin");
        var otherCookies = new CookieContainer();
        await host.CreateBrowser(otherCookies).GetTextAsync("/set?key=a&value=b");
        var raw = host.CreateRawClient();

        // Erin's auth cookie with the other browser's session cookie: the reference is not in that row.
        var mixed = ReplaceCookie(
            otherCookies.GetCookieHeader(host.BaseAddress), AuthCookie, CookieValue(erinCookies.GetCookieHeader(host.BaseAddress), AuthCookie));
        using var response = await raw.SendWithCookieAsync("/whoami", mixed);

        Assert.That(await response.Content.ReadAsStringAsync(), Is.EqualTo("anonymous"));
    }

    [Test]
    public async Task SigningOutOfAHelperScheme_RemovesOnlyItsTicket()
    {
        await using var host = await AuthTestApp.StartAsync(Folder.Path);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/signin?user=erin");
        await browser.GetTextAsync("/signin-external?user=erin");
        var external = await browser.GetTextAsync("/external");

        await browser.GetTextAsync("/signout-external");

        Assert.Multiple(async () =>
        {
            Assert.That(external, Is.EqualTo("external-erin"));
            Assert.That(await browser.GetTextAsync("/external"), Is.EqualTo("none"));
            Assert.That(await browser.GetTextAsync("/whoami"), Is.EqualTo("erin"), "the app's sign-in stays");
            Assert.That(host.CountRows(), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task UseAuthenticationBeforeUseServerSideSessions_SignsIn_OnTheSessionTheAppSees()
    {
        await using var host = await AuthTestApp.StartAsync(Folder.Path, authenticationBeforeSessions: true);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=cart&value=apples");

        await browser.GetTextAsync("/signin?user=erin");
        var me = await browser.GetTextAsync("/me");
        var sessions = await host.Services.GetRequiredService<ISessionManager>().ListForUserAsync("erin");

        Assert.Multiple(async () =>
        {
            Assert.That(sessions, Has.Count.EqualTo(1));
            Assert.That(me, Is.EqualTo("erin " + sessions[0].Id), "authentication read the sign-in from the session the app sees");
            Assert.That(await browser.GetTextAsync("/get?key=cart"), Is.EqualTo("apples"));
            Assert.That(await browser.GetTextAsync("/admin-only"), Is.EqualTo("admin page for erin"));
            Assert.That(host.CountRows(), Is.EqualTo(1), "one row per browser");
        });

        await browser.GetTextAsync("/signout");
        Assert.Multiple(async () =>
        {
            Assert.That(await browser.GetTextAsync("/whoami"), Is.EqualTo("anonymous"));
            Assert.That(host.CountRows(), Is.Zero, "the sign-out ended the row");
        });
    }

    [Test]
    public async Task UseAuthenticationBeforeUseServerSideSessions_AnExpiredTicket_EndsTheSessionTheAppThenSees()
    {
        var time = Now();
        await using var host = await AuthTestApp.StartAsync(
            Folder.Path,
            time,
            cookie: o =>
            {
                o.ExpireTimeSpan = TimeSpan.FromMinutes(10);
                o.SlidingExpiration = false;
            },
            authenticationBeforeSessions: true,
            configure: o => o.IdleTimeout = TimeSpan.FromHours(1));
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/signin?user=erin");
        await browser.GetTextAsync("/set?key=cart&value=apples");

        // Authentication finds the ticket expired and removes it (a sign-out) before the session middleware runs.
        time.Advance(TimeSpan.FromMinutes(11));
        var cart = await browser.GetTextAsync("/get?key=cart");

        Assert.Multiple(async () =>
        {
            Assert.That(cart, Is.EqualTo("(none)"), "the app sees the session authentication ended, not a second copy of it");
            Assert.That(host.CountRows(), Is.Zero);
            Assert.That(await browser.GetTextAsync("/whoami"), Is.EqualTo("anonymous"));
        });
    }

    [Test]
    public async Task TheTicketStore_InAnAppWithoutUseServerSideSessions_FailsNamingTheCallToAdd()
    {
        await using var host = await AuthTestApp.StartAsync(Folder.Path, sessionMiddleware: false);
        var browser = host.CreateBrowser();

        using var response = await browser.GetAsync("/signin?user=erin");

        var messages = host.Logs.GetSnapshot().Select(r => r.Exception?.Message ?? "").ToList();
        Assert.Multiple(() =>
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.InternalServerError));
            Assert.That(messages, Has.Some.Contains("add app.UseServerSideSessions()"));
            Assert.That(messages, Has.None.Contains("before app.UseAuthentication()"), "the order of the two calls does not matter");
        });
    }

    /// <summary>
    /// The cookie handler renews a sliding ticket as the response starts; a response without a body starts only after the
    /// whole pipeline, the session middleware's commit included, returned.
    /// </summary>
    [TestCase("/redirect", HttpStatusCode.Redirect, false)]
    [TestCase("/no-content", HttpStatusCode.NoContent, false)]
    [TestCase("/ok-empty", HttpStatusCode.OK, false)]
    [TestCase("/whoami", HttpStatusCode.OK, false)]
    [TestCase("/redirect", HttpStatusCode.Redirect, true)]
    [TestCase("/no-content", HttpStatusCode.NoContent, true)]
    [TestCase("/ok-empty", HttpStatusCode.OK, true)]
    [TestCase("/whoami", HttpStatusCode.OK, true)]
    public async Task SlidingRenewal_OnAnyResponseShape_Succeeds_AndStoresTheRenewedTicket(string path, HttpStatusCode expected, bool authenticationFirst)
    {
        var time = Now();
        await using var host = await AuthTestApp.StartAsync(
            Folder.Path,
            time,
            cookie: o =>
            {
                o.ExpireTimeSpan = TimeSpan.FromMinutes(10);
                o.SlidingExpiration = true;
            },
            authenticationBeforeSessions: authenticationFirst,
            configure: o => o.IdleTimeout = TimeSpan.FromHours(1));
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/signin?user=erin");
        var signedIn = await browser.GetTextAsync("/me");

        // Past half of the ticket's 10 minutes: this response renews it.
        time.Advance(TimeSpan.FromMinutes(6));
        using var renewing = await browser.GetAsync(path);

        // 12 minutes after the sign-in: past the first ticket's expiry, within the renewed one's.
        time.Advance(TimeSpan.FromMinutes(6));
        var after = await browser.GetTextAsync("/me");

        Assert.Multiple(() =>
        {
            Assert.That(renewing.StatusCode, Is.EqualTo(expected));
            Assert.That(renewing.SetCookies(AuthCookie), Has.Count.EqualTo(1), "the handler renewed the ticket on this response");
            Assert.That(after, Is.EqualTo(signedIn), "the renewed ticket was stored: the same user, in the same session");
        });
    }

    private static CookieContainer PersistentOnly(CookieContainer cookies, Uri address)
    {
        var kept = new CookieContainer();
        foreach (Cookie cookie in cookies.GetCookies(address))
        {
            if (cookie.Expires != DateTime.MinValue)
            {
                kept.Add(address, new Cookie(cookie.Name, cookie.Value, cookie.Path) { Expires = cookie.Expires });
            }
        }

        Assert.That(kept.Count, Is.EqualTo(2), "both cookies are persistent");
        return kept;
    }

    private static async Task<byte[]> ReadAllDatabaseBytesAsync(string path)
    {
        var all = new List<byte>(await File.ReadAllBytesAsync(path));
        if (File.Exists(path + "-wal"))
        {
            all.AddRange(await File.ReadAllBytesAsync(path + "-wal"));
        }

        return [.. all];
    }

    private static bool Contains(byte[] haystack, string needle) => haystack.AsSpan().IndexOf(Encoding.UTF8.GetBytes(needle)) >= 0;

    private static string CookieValue(string header, string name) =>
        header.Split("; ").Single(c => c.StartsWith(name + "=", StringComparison.Ordinal))[(name.Length + 1)..];

    private static string ReplaceCookie(string header, string name, string value) =>
        string.Join("; ", header.Split("; ").Where(c => !c.StartsWith(name + "=", StringComparison.Ordinal)).Append($"{name}={value}"));
}
