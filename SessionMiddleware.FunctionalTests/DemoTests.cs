using System.Net;
using System.Text.RegularExpressions;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// Starts the demo app as a real process (<c>dotnet exec SessionMiddleware.Demo.dll</c>) on a free loopback port,
/// with its SQLite file in a temp folder, and drives it over HTTP like browsers that keep cookies. It signs in with
/// ASP.NET Core cookie authentication whose sign-ins live in the session row (<c>AddTicketStore</c>). Every test that
/// signs in uses a user name of its own, so the tests share one demo process without seeing each other's sessions.
/// </summary>
[TestFixture]
public sealed partial class DemoTests
{
    private const string CookieName = ".ServerSession";
    private const string AuthCookieName = ".AspNetCore.Cookies";

    private DemoProcess _demo = null!;

    [OneTimeSetUp]
    public async Task StartDemo() => _demo = await DemoProcess.StartAsync("demo");

    [OneTimeTearDown]
    public async Task StopDemo()
    {
        if (_demo is not null)
        {
            await _demo.DisposeAsync();
        }
    }

    [Test]
    public async Task Demo_FirstVisit_ServesPageWithCounterAtOne()
    {
        using var browser = CreateBrowser(out var cookies);

        var page = await GetPageAsync(browser);

        Assert.Multiple(() =>
        {
            Assert.That(page, Does.Contain("<h1>SessionMiddleware demo</h1>"));
            Assert.That(Visits(page), Is.EqualTo(1));
            Assert.That(SessionId(page), Does.Match("^[0-9a-f]{64}$"), "the public session Id is the hex of a SHA-256");
            Assert.That(page, Does.Contain("id=\"created-at\"").And.Contain("id=\"last-access\""));
            Assert.That(cookies.GetCookies(_demo.BaseAddress)[".ServerSession"], Is.Not.Null, "the session cookie is set on the first write");
        });
    }

    [Test]
    public async Task Demo_MapsTheStoreHealthCheck_AtHealthz()
    {
        using var client = CreateBrowser(out var cookies);

        using var response = await client.GetAsync("/healthz");

        Assert.Multiple(async () =>
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(await response.Content.ReadAsStringAsync(), Is.EqualTo("Healthy"));
            Assert.That(cookies.GetCookies(_demo.BaseAddress)[CookieName], Is.Null, "a health probe creates no session");
        });
    }

    [Test]
    public async Task Demo_StartedWithConnectionStringArgument_StoresSessionsInThatFile()
    {
        using var browser = CreateBrowser(out _);

        await GetPageAsync(browser);

        Assert.Multiple(() =>
        {
            Assert.That(File.Exists(_demo.DatabasePath), Is.True, "the database named on the command line");
            Assert.That(File.Exists(Path.Combine(_demo.Folder, "sessions.db")), Is.False, "the appsettings.json default is overridden");
        });
    }

    [Test]
    public async Task Demo_SecondVisitWithCookie_CounterGoesUpInSameSession()
    {
        using var browser = CreateBrowser(out _);

        var first = await GetPageAsync(browser);
        var second = await GetPageAsync(browser);
        var third = await GetPageAsync(browser);

        Assert.Multiple(() =>
        {
            Assert.That(Visits(first), Is.EqualTo(1));
            Assert.That(Visits(second), Is.EqualTo(2));
            Assert.That(Visits(third), Is.EqualTo(3));
            Assert.That(SessionId(second), Is.EqualTo(SessionId(first)));
            Assert.That(SessionId(third), Is.EqualTo(SessionId(first)));
        });
    }

    [Test]
    public async Task Demo_OtherBrowser_GetsItsOwnSession()
    {
        using var alice = CreateBrowser(out _);
        using var bob = CreateBrowser(out _);

        await GetPageAsync(alice);
        var alicePage = await GetPageAsync(alice);
        var bobPage = await GetPageAsync(bob);

        Assert.Multiple(() =>
        {
            Assert.That(Visits(alicePage), Is.EqualTo(2));
            Assert.That(Visits(bobPage), Is.EqualTo(1));
            Assert.That(SessionId(bobPage), Is.Not.EqualTo(SessionId(alicePage)));
        });
    }

    [Test]
    public async Task Demo_NotePosted_RedirectsAndShowsNoteHtmlEncoded()
    {
        using var browser = CreateBrowser(out _);
        var page = await GetPageAsync(browser);
        const string note = "Buy <b>milk</b> & \"eggs\"";

        await PostFormAsync(browser, "/note", page, "/", ("note", note));
        var after = await GetPageAsync(browser);

        Assert.Multiple(() =>
        {
            Assert.That(NoteParagraph(after), Is.EqualTo("Buy &lt;b&gt;milk&lt;/b&gt; &amp; &quot;eggs&quot;"));
            Assert.That(after, Does.Not.Contain("<b>milk</b>"), "user input is never written as markup");
            Assert.That(Visits(after), Is.EqualTo(2), "the note is kept in the same session as the counter");
        });
    }

    [Test]
    public async Task Demo_ForgetMe_AbandonsSessionSoCounterNoteAndIdAreNew()
    {
        using var browser = CreateBrowser(out var cookies);
        await GetPageAsync(browser);
        var page = await GetPageAsync(browser);
        await PostFormAsync(browser, "/note", page, "/", ("note", "remember this"));
        page = await GetPageAsync(browser);
        Assert.That(Visits(page), Is.EqualTo(3));
        Assert.That(NoteParagraph(page), Is.EqualTo("remember this"));
        var oldCookie = SessionCookie(cookies);

        var posted = await PostFormAsync(browser, "/forget", page, "/");
        var after = await GetPageAsync(browser);
        var replayed = await GetPageWithCookiesAsync($"{CookieName}={oldCookie}");

        Assert.Multiple(() =>
        {
            Assert.That(Expires(posted.SessionCookies), Is.True, "Abandon expires the cookie");
            Assert.That(Visits(after), Is.EqualTo(1));
            Assert.That(NoteParagraph(after), Is.EqualTo("<em>No note yet.</em>"));
            Assert.That(after, Does.Not.Contain("remember this"));
            Assert.That(SessionId(after), Is.Not.EqualTo(SessionId(page)), "a new session, not the abandoned one emptied");
            Assert.That(Visits(replayed), Is.EqualTo(1), "the abandoned session's cookie is never adopted again");
            Assert.That(SessionId(replayed), Is.Not.EqualTo(SessionId(page)));
        });
    }

    [Test]
    public async Task Demo_PostWithoutAntiforgeryToken_Returns400AndKeepsSession()
    {
        using var browser = CreateBrowser(out _);
        await GetPageAsync(browser);

        using var content = new FormUrlEncodedContent([new KeyValuePair<string, string>("note", "forged")]);
        using var response = await browser.PostAsync("/note", content);
        var after = await GetPageAsync(browser);

        Assert.Multiple(() =>
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
            Assert.That(Visits(after), Is.EqualTo(2));
            Assert.That(after, Does.Not.Contain("forged"));
        });
    }

    [Test]
    public async Task Demo_SignIn_ShowsNameHtmlEncodedKeepsDataAndRenewsSessionId()
    {
        using var browser = CreateBrowser(out var cookies);
        var before = await GetPageAsync(browser);
        var oldCookie = SessionCookie(cookies);
        var name = $"<i>Ann</i> & \"co\" {Guid.NewGuid():N}";
        var signInPage = await GetSignInPageAsync(browser);

        var posted = await PostFormAsync(browser, "/signin", signInPage, "/", ("name", name));
        var after = await GetPageAsync(browser);
        var replayed = await GetPageWithCookiesAsync($"{CookieName}={oldCookie}");

        Assert.Multiple(() =>
        {
            Assert.That(posted.SessionCookies, Has.Count.EqualTo(1), "signing in sends the renewed cookie");
            Assert.That(posted.AuthCookies, Has.Count.EqualTo(1), "cookie authentication's cookie, a reference to the sign-in in the session");
            Assert.That(posted.AuthCookies.Concat(posted.SessionCookies), Has.None.Contains("expires="), "not remembered: both are browser-session cookies");
            Assert.That(SessionCookie(cookies), Is.Not.EqualTo(oldCookie));
            Assert.That(SignedInAs(after), Is.EqualTo(System.Text.Encodings.Web.HtmlEncoder.Default.Encode(name)));
            Assert.That(after, Does.Not.Contain("<i>Ann</i>"), "user input is never written as markup");
            Assert.That(SessionId(after), Is.Not.EqualTo(SessionId(before)), "BindToUser renews the session ID");
            Assert.That(Visits(after), Is.EqualTo(2), "the session keeps its data across the renewal");
            Assert.That(after, Does.Not.Contain("id=\"sign-in-link\""), "no sign-in link once signed in");
            Assert.That(after, Does.Contain("id=\"sessions-link\"").And.Contain("id=\"sign-out\""));
            Assert.That(after, Does.Contain("<p id=\"remembered\">Until you close the browser, or after 20 minutes without a visit.</p>"));
            Assert.That(SignedInAs(replayed), Is.Null, "the cookie from before signing in is dead");
            Assert.That(Visits(replayed), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task Demo_SignInWithBlankName_Returns400()
    {
        using var browser = CreateBrowser(out _);
        await GetPageAsync(browser);
        var page = await GetSignInPageAsync(browser);

        using var response = await PostRawAsync(browser, "/signin", page, ("name", "   "));
        var after = await GetPageAsync(browser);

        Assert.Multiple(() =>
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
            Assert.That(SignedInAs(after), Is.Null);
            Assert.That(response.SetCookies(AuthCookieName), Is.Empty);
        });
    }

    [Test]
    public async Task Demo_SignInPage_SaysThereAreNoPasswordsAndOffersRememberMe()
    {
        using var browser = CreateBrowser(out _);

        var page = await GetSignInPageAsync(browser);

        Assert.Multiple(() =>
        {
            Assert.That(page, Does.Contain("<form id=\"sign-in\" method=\"post\" action=\"/signin\">"));
            Assert.That(page, Does.Contain("id=\"no-passwords\"").And.Contain("This demo has no passwords."));
            Assert.That(page, Does.Contain("<input type=\"checkbox\" name=\"remember\" value=\"true\">"));
            Assert.That(page, Does.Not.Contain("type=\"password\""));
            Assert.That(page, Does.Contain("<input type=\"hidden\" name=\"returnUrl\" value=\"/\">"));
        });
    }

    [Test]
    public async Task Demo_RememberMe_KeepsTheBrowserSignedInAcrossARestart_WithoutItTheRestartSignsOut()
    {
        var user = NewUser();
        using var remembered = CreateBrowser(out var rememberedCookies);
        using var forgotten = CreateBrowser(out var forgottenCookies);
        var rememberedHome = await SignInAsync(remembered, user, remember: true);
        var forgottenHome = await SignInAsync(forgotten, user);

        // A browser restart: only the cookies with an expiry are left.
        using var rememberedRestarted = CreateBrowser(PersistentOnly(rememberedCookies));
        using var forgottenRestarted = CreateBrowser(PersistentOnly(forgottenCookies));
        var rememberedAfter = await GetPageAsync(rememberedRestarted);
        var forgottenAfter = await GetPageAsync(forgottenRestarted);

        Assert.Multiple(() =>
        {
            Assert.That(PersistentOnly(rememberedCookies).Count, Is.EqualTo(2), "remember me: the session and authentication cookies both persist");
            Assert.That(rememberedHome, Does.Match("<p id=\"remembered\">This browser remembers you until \\d{4}-\\d\\d-\\d\\d "));
            Assert.That(SignedInAs(rememberedAfter), Is.EqualTo(user), "still signed in after the restart");
            Assert.That(SessionId(rememberedAfter), Is.EqualTo(SessionId(rememberedHome)), "in the same session");
            Assert.That(Visits(rememberedAfter), Is.EqualTo(Visits(rememberedHome) + 1));
            Assert.That(PersistentOnly(forgottenCookies).Count, Is.Zero, "without remember me, both cookies end with the browser");
            Assert.That(SignedInAs(forgottenAfter), Is.Null);
            Assert.That(SessionId(forgottenAfter), Is.Not.EqualTo(SessionId(forgottenHome)));
        });
    }

    [Test]
    public async Task Demo_SignInFromTheRedirect_ReturnsToTheSessionsPage()
    {
        var user = NewUser();
        using var browser = CreateBrowser(out _);

        var location = await SessionsPageRedirectAsync(browser);
        var signInPage = await GetHtmlAsync(browser, location.PathAndQuery);
        var returnUrl = ReturnUrlField().Match(signInPage).Groups[1].Value;
        await PostFormAsync(browser, "/signin", signInPage, "/sessions", ("name", user), ("returnUrl", WebUtility.HtmlDecode(returnUrl)));
        var sessions = await GetSessionsPageAsync(browser);

        Assert.Multiple(() =>
        {
            Assert.That(returnUrl, Is.EqualTo("/sessions"), "the sign-in page keeps where the visitor was going");
            Assert.That(SignedInAs(sessions), Is.EqualTo(user));
            Assert.That(SessionRows(sessions), Has.Count.EqualTo(1));
        });
    }

    [TestCase("//evil.example/")]
    [TestCase("/\\evil.example/")]
    [TestCase("https://evil.example/")]
    [TestCase("javascript:alert(1)")]
    public async Task Demo_SignInWithAReturnUrlToAnotherSite_GoesHomeInstead(string returnUrl)
    {
        using var browser = CreateBrowser(out _);
        var page = await GetSignInPageAsync(browser);

        await PostFormAsync(browser, "/signin", page, "/", ("name", NewUser()), ("returnUrl", returnUrl));
        var home = await GetPageAsync(browser);

        Assert.That(SignedInAs(home), Is.Not.Null);
    }

    [Test]
    public async Task Demo_ForgetMeSignedIn_SignsOutTooAndEndsTheSession()
    {
        var user = NewUser();
        using var browser = CreateBrowser(out var cookies);
        var home = await SignInAsync(browser, user);
        var signedInCookies = CookieHeader(cookies);

        var posted = await PostFormAsync(browser, "/forget", home, "/");
        var after = await GetPageAsync(browser);
        var replayed = await GetPageWithCookiesAsync(signedInCookies);
        using var anotherBrowser = CreateBrowser(out _);
        var anotherHome = await SignInAsync(anotherBrowser, user);
        var sessions = await GetSessionsPageAsync(anotherBrowser);

        Assert.Multiple(() =>
        {
            Assert.That(Expires(posted.SessionCookies), Is.True);
            Assert.That(Expires(posted.AuthCookies), Is.True, "the authentication cookie is expired too");
            Assert.That(SignedInAs(after), Is.Null);
            Assert.That(Visits(after), Is.EqualTo(1));
            Assert.That(SignedInAs(replayed), Is.Null, "both cookies from before, replayed: anonymous");
            Assert.That(SessionRows(sessions).Select(r => r.Id), Is.EqualTo(new[] { SessionId(anotherHome) }), "the forgotten session is not listed");
        });
    }

    [Test]
    public async Task Demo_SessionsPage_ListsEveryDeviceOfTheUserAndMarksThisOne()
    {
        var user = NewUser();
        using var laptop = CreateBrowser(out _, "LaptopBrowser/1.0 (X11; Linux x86_64)");
        using var phone = CreateBrowser(out _, "PhoneBrowser/2.0 <script>alert(1)</script>");
        using var stranger = CreateBrowser(out _);
        var laptopHome = await SignInAsync(laptop, user);
        var phoneHome = await SignInAsync(phone, user);
        await SignInAsync(stranger, NewUser());

        var page = await GetSessionsPageAsync(laptop);
        var rows = SessionRows(page);

        Assert.That(rows, Has.Count.EqualTo(2), "this user's two sessions, not the other user's");
        var mine = rows.Single(r => r.Id == SessionId(laptopHome));
        var other = rows.Single(r => r.Id == SessionId(phoneHome));
        Assert.Multiple(() =>
        {
            Assert.That(mine.IsThisDevice, Is.True);
            Assert.That(mine.Html, Does.Contain("this device").And.Not.Contain("/sessions/revoke"));
            Assert.That(mine.Html, Does.Contain("LaptopBrowser/1.0 (X11; Linux x86_64)"));
            Assert.That(other.IsThisDevice, Is.False);
            Assert.That(other.Html, Does.Contain("action=\"/sessions/revoke\"").And.Contain($"name=\"id\" value=\"{other.Id}\""));
            Assert.That(other.Html, Does.Contain("PhoneBrowser/2.0 &lt;script&gt;"), "the User-Agent is shown HTML-encoded");
            Assert.That(other.Html, Does.Not.Contain("<script>"));
            Assert.That(other.Html, Does.Contain("<dd class=\"ip\">127.0.0.1</dd>"));
            Assert.That(other.Html, Does.Match("<dd class=\"created\">\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ</dd>"));
            Assert.That(other.Html, Does.Match("<dd class=\"last-seen\">\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ</dd>"));
            Assert.That(page, Does.Contain("id=\"revoke-others\""));
        });
    }

    [Test]
    public async Task Demo_SessionsPageNotSignedIn_RedirectsToTheSignInPage()
    {
        using var browser = CreateBrowser(out _);
        await GetPageAsync(browser);

        var location = await SessionsPageRedirectAsync(browser);
        var page = await GetHtmlAsync(browser, location.PathAndQuery);

        Assert.Multiple(() =>
        {
            Assert.That(location, Is.EqualTo(SignInForSessions), "the cookie scheme's LoginPath, with the way back");
            Assert.That(page, Does.Contain("id=\"sign-in\""));
            Assert.That(page, Does.Not.Contain("id=\"sessions\""));
        });
    }

    [Test]
    public async Task Demo_RevokeOtherDevice_ItIsSignedOutAtOnceAndThisDeviceStays()
    {
        var user = NewUser();
        using var a = CreateBrowser(out _, "DeviceA");
        using var b = CreateBrowser(out _, "DeviceB");
        var aHome = await SignInAsync(a, user);
        var bHome = await SignInAsync(b, user);
        var sessions = await GetSessionsPageAsync(a);

        await PostFormAsync(a, "/sessions/revoke", sessions, "/sessions", ("id", SessionId(bHome)));
        var bSessions = await SessionsPageRedirectAsync(b);
        var bAfter = await GetPageAsync(b);
        var aSessions = await GetSessionsPageAsync(a);
        var aAfter = await GetPageAsync(a);

        Assert.Multiple(() =>
        {
            Assert.That(bSessions, Is.EqualTo(SignInForSessions), "the revoked device's next request is anonymous: to the sign-in page");
            Assert.That(SignedInAs(bAfter), Is.Null);
            Assert.That(bAfter, Does.Contain("id=\"sign-in-link\""));
            Assert.That(SessionId(bAfter), Is.Not.EqualTo(SessionId(bHome)), "the revoked ID is never adopted again");
            Assert.That(SessionRows(aSessions).Select(r => (r.Id, r.IsThisDevice)), Is.EqualTo(new[] { (SessionId(aHome), true) }));
            Assert.That(aSessions, Does.Contain("id=\"flash\"").And.Contain("id=\"no-others\""));
            Assert.That(SignedInAs(aAfter), Is.Not.Null, "the device that revoked stays signed in");
            Assert.That(SessionId(aAfter), Is.EqualTo(SessionId(aHome)));
        });
    }

    [Test]
    public async Task Demo_RevokeSessionOfAnotherUser_Returns404AndKeepsIt()
    {
        using var alice = CreateBrowser(out _);
        using var mallory = CreateBrowser(out _);
        var aliceHome = await SignInAsync(alice, NewUser());
        await SignInAsync(mallory, NewUser());
        var mallorySessions = await GetSessionsPageAsync(mallory);

        using var response = await PostRawAsync(mallory, "/sessions/revoke", mallorySessions, ("id", SessionId(aliceHome)));
        var aliceAfter = await GetPageAsync(alice);

        Assert.Multiple(() =>
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
            Assert.That(SignedInAs(aliceAfter), Is.Not.Null, "a session ID is no licence to end someone else's session");
            Assert.That(SessionId(aliceAfter), Is.EqualTo(SessionId(aliceHome)));
        });
    }

    [Test]
    public async Task Demo_RevokeNotSignedIn_SendsToTheSignInPageAndRevokesNothing()
    {
        using var victim = CreateBrowser(out _);
        using var anonymous = CreateBrowser(out _);
        var victimHome = await SignInAsync(victim, NewUser());
        var page = await GetPageAsync(anonymous);

        using var response = await PostRawAsync(anonymous, "/sessions/revoke", page, ("id", SessionId(victimHome)));
        var victimAfter = await GetPageAsync(victim);

        Assert.Multiple(() =>
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.SeeOther));
            Assert.That(response.Headers.Location?.OriginalString, Is.EqualTo("/signin?ReturnUrl=%2Fsessions"));
            Assert.That(SignedInAs(victimAfter), Is.Not.Null);
        });
    }

    [Test]
    public async Task Demo_SignOutEverywhereElse_EndsEveryOtherSessionOfTheUser()
    {
        var user = NewUser();
        using var a = CreateBrowser(out _, "DeviceA");
        using var b = CreateBrowser(out _, "DeviceB");
        using var c = CreateBrowser(out _, "DeviceC");
        using var otherUser = CreateBrowser(out _);
        var aHome = await SignInAsync(a, user);
        await SignInAsync(b, user);
        await SignInAsync(c, user);
        await SignInAsync(otherUser, NewUser());
        var sessions = await GetSessionsPageAsync(a);
        Assert.That(SessionRows(sessions), Has.Count.EqualTo(3));

        await PostFormAsync(a, "/sessions/revoke-others", sessions, "/sessions");
        var aSessions = await GetSessionsPageAsync(a);
        var bSessions = await SessionsPageRedirectAsync(b);
        var cSessions = await SessionsPageRedirectAsync(c);
        var otherUserHome = await GetPageAsync(otherUser);

        Assert.Multiple(() =>
        {
            Assert.That(bSessions, Is.EqualTo(SignInForSessions));
            Assert.That(cSessions, Is.EqualTo(SignInForSessions));
            Assert.That(SignedInAs(otherUserHome), Is.Not.Null, "another user's sessions are untouched");
            Assert.That(SessionRows(aSessions).Select(r => r.Id), Is.EqualTo(new[] { SessionId(aHome) }));
            Assert.That(aSessions, Does.Contain("Signed out 2 other sessions."));
        });
    }

    [Test]
    public async Task Demo_SignOutEverywhereElseWithoutAntiforgeryToken_Returns400AndEndsNothing()
    {
        var user = NewUser();
        using var a = CreateBrowser(out _);
        using var b = CreateBrowser(out _);
        await SignInAsync(a, user);
        await SignInAsync(b, user);

        using var content = new FormUrlEncodedContent([]);
        using var response = await a.PostAsync("/sessions/revoke-others", content);
        var bAfter = await GetPageAsync(b);

        Assert.Multiple(() =>
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest), "a cross-site form cannot sign the user out");
            Assert.That(SignedInAs(bAfter), Is.Not.Null);
        });
    }

    [Test]
    public async Task Demo_SignOut_EndsTheSessionAndItsCookiesAreDead()
    {
        var user = NewUser();
        using var browser = CreateBrowser(out var cookies);
        using var otherDevice = CreateBrowser(out _);
        var home = await SignInAsync(browser, user);
        await SignInAsync(otherDevice, user);
        var signedInCookies = CookieHeader(cookies);

        var posted = await PostFormAsync(browser, "/signout", home, "/");
        var after = await GetPageAsync(browser);
        var replayed = await GetPageWithCookiesAsync(signedInCookies);
        var otherSessions = await GetSessionsPageAsync(otherDevice);

        Assert.Multiple(() =>
        {
            Assert.That(Expires(posted.SessionCookies), Is.True, "signing out ends the session row and expires its cookie");
            Assert.That(Expires(posted.AuthCookies), Is.True, "and the authentication cookie");
            Assert.That(SignedInAs(after), Is.Null);
            Assert.That(Visits(after), Is.EqualTo(1), "a new, empty session");
            Assert.That(SessionId(after), Is.Not.EqualTo(SessionId(home)));
            Assert.That(SignedInAs(replayed), Is.Null, "the signed-out cookies, replayed, are anonymous");
            Assert.That(SessionRows(otherSessions).Select(r => r.Id), Does.Not.Contain(SessionId(home)), "the row is gone from the user's list");
            Assert.That(SessionRows(otherSessions), Has.Count.EqualTo(1));
        });
    }

    [Test]
    public async Task Demo_SignOutFromAStalePageOfARevokedDevice_JustGoesHome()
    {
        var user = NewUser();
        using var a = CreateBrowser(out _);
        using var b = CreateBrowser(out _);
        await SignInAsync(a, user);
        var bHome = await SignInAsync(b, user);
        await PostFormAsync(a, "/sessions/revoke-others", await GetSessionsPageAsync(a), "/sessions");

        await PostFormAsync(b, "/signout", bHome, "/");
        var bAfter = await GetPageAsync(b);

        Assert.That(SignedInAs(bAfter), Is.Null, "no 400 for a form whose token was for the user who is gone");
    }

    private static string NewUser() => "user-" + Guid.NewGuid().ToString("N")[..12];

    private Uri SignInForSessions => new(_demo.BaseAddress, "/signin?ReturnUrl=%2Fsessions");

    private HttpClient CreateBrowser(out CookieContainer cookies, string? userAgent = null)
    {
        cookies = new CookieContainer();
        return CreateBrowser(cookies, userAgent);
    }

    private HttpClient CreateBrowser(CookieContainer cookies, string? userAgent = null)
    {
        var handler = new HttpClientHandler { CookieContainer = cookies, UseCookies = true, AllowAutoRedirect = false };
        var client = new HttpClient(handler) { BaseAddress = _demo.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        if (userAgent is not null)
        {
            client.DefaultRequestHeaders.TryAddWithoutValidation("User-Agent", userAgent);
        }

        return client;
    }

    private string SessionCookie(CookieContainer cookies)
    {
        var cookie = cookies.GetCookies(_demo.BaseAddress)[CookieName];
        Assert.That(cookie, Is.Not.Null, "the browser holds a session cookie");
        return cookie!.Value;
    }

    private Task<string> GetPageAsync(HttpClient browser) => GetHtmlAsync(browser, "/");

    private Task<string> GetSessionsPageAsync(HttpClient browser) => GetHtmlAsync(browser, "/sessions");

    private Task<string> GetSignInPageAsync(HttpClient browser) => GetHtmlAsync(browser, "/signin");

    /// <summary>GETs the sessions page expecting to be sent to the sign-in page; returns where to.</summary>
    private async Task<Uri> SessionsPageRedirectAsync(HttpClient browser)
    {
        using var response = await browser.GetAsync("/sessions");
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Redirect), $"GET /sessions: {await response.Content.ReadAsStringAsync()}");
        return new Uri(_demo.BaseAddress, response.Headers.Location!);
    }

    private string CookieHeader(CookieContainer cookies) => cookies.GetCookieHeader(_demo.BaseAddress);

    /// <summary>The cookies a restarted browser still has: those with an expiry.</summary>
    private CookieContainer PersistentOnly(CookieContainer cookies)
    {
        var kept = new CookieContainer();
        foreach (Cookie cookie in cookies.GetCookies(_demo.BaseAddress))
        {
            if (cookie.Expires != DateTime.MinValue)
            {
                kept.Add(_demo.BaseAddress, new Cookie(cookie.Name, cookie.Value, cookie.Path) { Expires = cookie.Expires });
            }
        }

        return kept;
    }

    private async Task<string> GetHtmlAsync(HttpClient browser, string path)
    {
        using var response = await browser.GetAsync(path);
        var body = await response.Content.ReadAsStringAsync();
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), $"GET {path} answered {(int)response.StatusCode}: {body}\nDemo output:\n{_demo.Output}");
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("text/html"));
        return body;
    }

    /// <summary>The home page as a browser holding only these cookies sees it (replayed cookies).</summary>
    private async Task<string> GetPageWithCookiesAsync(string cookieHeader)
    {
        using var handler = new HttpClientHandler { UseCookies = false, AllowAutoRedirect = false };
        using var client = new HttpClient(handler) { BaseAddress = _demo.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        using var request = new HttpRequestMessage(HttpMethod.Get, "/");
        request.Headers.TryAddWithoutValidation("Cookie", cookieHeader);
        using var response = await client.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), $"GET / with replayed cookies answered {(int)response.StatusCode}: {body}");
        return body;
    }

    /// <summary>Visits the home page, then signs in on the sign-in page; returns the home page seen afterwards.</summary>
    private async Task<string> SignInAsync(HttpClient browser, string name, bool remember = false)
    {
        await GetPageAsync(browser);
        var page = await GetSignInPageAsync(browser);
        await PostFormAsync(browser, "/signin", page, "/", remember ? [("name", name), ("remember", "true")] : [("name", name)]);
        var after = await GetPageAsync(browser);
        Assert.That(SignedInAs(after), Is.Not.Null, $"signed in as {name}");
        return after;
    }

    /// <summary>
    /// Posts a form of the page with its antiforgery field, as the browser would, and expects the redirect to
    /// <paramref name="location"/>; returns the Set-Cookie headers of the session and authentication cookies.
    /// </summary>
    private async Task<Posted> PostFormAsync(HttpClient browser, string path, string page, string location, params (string Name, string Value)[] fields)
    {
        using var response = await PostRawAsync(browser, path, page, fields);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.SeeOther), $"POST {path}: {await response.Content.ReadAsStringAsync()}");
        Assert.That(response.Headers.Location?.OriginalString, Is.EqualTo(location));
        return new Posted(response.SetCookies(CookieName), response.SetCookies(AuthCookieName));
    }

    private static async Task<HttpResponseMessage> PostRawAsync(HttpClient browser, string path, string page, params (string Name, string Value)[] fields)
    {
        var token = AntiforgeryField().Match(page);
        Assert.That(token.Success, Is.True, "the page's forms carry an antiforgery field");
        var form = new List<KeyValuePair<string, string>>
        {
            new(WebUtility.HtmlDecode(token.Groups["name"].Value), WebUtility.HtmlDecode(token.Groups["value"].Value)),
        };
        form.AddRange(fields.Select(f => new KeyValuePair<string, string>(f.Name, f.Value)));

        using var content = new FormUrlEncodedContent(form);
        return await browser.PostAsync(path, content);
    }

    /// <summary>True when one of the Set-Cookie headers deletes its cookie (an expiry in the past).</summary>
    private static bool Expires(IReadOnlyList<string> setCookies) =>
        setCookies.Any(c => c.Contains("expires=Thu, 01 Jan 1970", StringComparison.OrdinalIgnoreCase));

    private static int Visits(string page)
    {
        var match = VisitsCounter().Match(page);
        Assert.That(match.Success, Is.True, "the page shows the visit counter");
        return int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    private static string SessionId(string page)
    {
        var match = SessionIdCode().Match(page);
        Assert.That(match.Success, Is.True, "the page shows the session Id");
        return match.Groups[1].Value;
    }

    private static string NoteParagraph(string page)
    {
        var match = NoteText().Match(page);
        Assert.That(match.Success, Is.True, "the page shows the note");
        return match.Groups[1].Value;
    }

    /// <summary>The (HTML-encoded) name the page says the user is signed in as, or null when it shows no one.</summary>
    private static string? SignedInAs(string page) => SignedInName().Match(page) is { Success: true } match ? match.Groups[1].Value : null;

    private static List<(string Id, bool IsThisDevice, string Html)> SessionRows(string page) =>
        [.. SessionRow().Matches(page).Select(m => (m.Groups["id"].Value, m.Groups["current"].Success, m.Groups["body"].Value))];

    [GeneratedRegex("""<strong id="visits">(\d+)</strong>""")]
    private static partial Regex VisitsCounter();

    [GeneratedRegex("""<code id="session-id">([^<]*)</code>""")]
    private static partial Regex SessionIdCode();

    [GeneratedRegex("""<p id="note">(.*?)</p>""", RegexOptions.Singleline)]
    private static partial Regex NoteText();

    [GeneratedRegex("""<p id="signed-in-as">Signed in as <strong>([^<]*)</strong>""")]
    private static partial Regex SignedInName();

    [GeneratedRegex("""<li class="session(?<current> this-device)?" data-session-id="(?<id>[0-9a-f]{64})">(?<body>.*?)</li>""", RegexOptions.Singleline)]
    private static partial Regex SessionRow();

    [GeneratedRegex("""<input type="hidden" name="(?<name>__RequestVerificationToken)" value="(?<value>[^"]*)">""")]
    private static partial Regex AntiforgeryField();

    [GeneratedRegex("""<input type="hidden" name="returnUrl" value="([^"]*)">""")]
    private static partial Regex ReturnUrlField();

    /// <summary>The Set-Cookie headers of a form post's response, of the session cookie and the authentication cookie.</summary>
    private sealed record Posted(IReadOnlyList<string> SessionCookies, IReadOnlyList<string> AuthCookies);
}
