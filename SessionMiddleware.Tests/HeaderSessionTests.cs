using System.Net;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using SessionMiddleware.Cookies;
using SessionMiddleware.Ids;
using SessionMiddleware.Live;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// <see cref="ServerSideSessionOptions.HeaderName"/>: a client without cookies (an <see cref="HttpClient"/> with no cookie
/// container, as a mobile app or an API client) keeps its session in a request and response header, over each store.
/// </summary>
[LaneFixture(StoreKind.Sqlite)]
[LaneFixture(StoreKind.PostgreSql)]
public sealed class HeaderSessionTests(StoreKind store) : TempFolderTest
{
    private const string Header = "X-Session";

    private Task<SessionTestHost> StartAsync(Action<ServerSideSessionOptions>? configure = null) =>
        SessionTestHost.StartAsync(Folder.Path, o =>
        {
            o.HeaderName = Header;
            configure?.Invoke(o);
        }, store: store);

    [Test]
    public async Task EmptyHeader_FirstWrite_ReturnsTheIdInTheHeader_NotACookie_WithNoStore()
    {
        await using var host = await StartAsync();
        var client = host.CreateRawClient();

        using var response = await client.SendWithHeaderAsync("/set?key=a&value=1", "");
        var token = response.SessionHeader();
        var id = await client.GetTextWithHeaderAsync("/id", token!);

        Assert.Multiple(() =>
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(token, Is.Not.Null.And.Not.Empty);
            Assert.That(response.SetCookies(host.CookieName), Is.Empty, "a header client gets no cookie");
            Assert.That(response.Headers.CacheControl?.NoStore, Is.True);
            Assert.That(host.SessionIdOf(token!), Is.EqualTo(id), "the header names the session the next request reads");
        });
    }

    [Test]
    public async Task Header_NextRequests_ReadTheSameSession_AndARead_ReturnsNoHeader()
    {
        await using var host = await StartAsync();
        var client = host.CreateRawClient();
        var token = await NewSessionAsync(client, "a", "1");

        using var write = await client.SendWithHeaderAsync("/set?key=b&value=2", token);
        using var read = await client.SendWithHeaderAsync("/keys", token);

        Assert.Multiple(async () =>
        {
            Assert.That(await read.Content.ReadAsStringAsync(), Is.EqualTo("a,b"));
            Assert.That(write.SessionHeader(), Is.Null, "the ID did not change: nothing to send back");
            Assert.That(read.SessionHeader(), Is.Null);
            Assert.That(await host.CountRowsAsync(), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task PersistentCookieOption_TheHeaderIsNotSentAgainWhenTheAccessIsRecorded()
    {
        await using var host = await StartAsync(o => o.Cookie.MaxAge = TimeSpan.FromDays(7));
        var client = host.CreateRawClient();
        var token = await NewSessionAsync(client, "a", "1");
        host.Time.Advance(TimeSpan.FromMinutes(5));

        using var touched = await client.SendWithHeaderAsync("/get?key=a", token);
        var lastAccess = Convert.ToInt64(await host.ExecuteScalarAsync("SELECT last_access FROM sessions"), System.Globalization.CultureInfo.InvariantCulture);

        Assert.Multiple(() =>
        {
            Assert.That(lastAccess, Is.EqualTo(host.Time.GetUtcNow().ToUnixTimeSeconds()), "the access was recorded");
            Assert.That(touched.SessionHeader(), Is.Null, "a header value has no expiry to slide");
            Assert.That(touched.SetCookies(host.CookieName), Is.Empty);
        });
    }

    [Test]
    public async Task NoHeader_NewSession_IsACookieSession_AndTheResponseNeverShowsTheIdInTheHeader()
    {
        await using var host = await StartAsync();
        var client = host.CreateRawClient();

        using var response = await client.GetAsync("/set?key=a&value=1");

        Assert.Multiple(() =>
        {
            Assert.That(response.SetCookieValue(host.CookieName), Is.Not.Null);
            Assert.That(response.Headers.Contains(Header), Is.False, "an HttpOnly cookie's value is never readable by a script");
        });
    }

    [TestCase("/regenerate")]
    [TestCase("/bind?user=alice")]
    public async Task RenewalOverTheHeader_ReturnsTheNewId_AndTheOldOneIsDead(string renew)
    {
        await using var host = await StartAsync();
        var client = host.CreateRawClient();
        var oldToken = await NewSessionAsync(client, "a", "kept");

        using var response = await client.SendWithHeaderAsync(renew, oldToken);
        var newToken = response.SessionHeader();

        Assert.Multiple(async () =>
        {
            Assert.That(newToken, Is.Not.Null.And.Not.Empty);
            Assert.That(response.SetCookies(host.CookieName), Is.Empty);
            Assert.That(response.Headers.CacheControl?.NoStore, Is.True);
            Assert.That(host.SessionIdOf(newToken!), Is.Not.EqualTo(host.SessionIdOf(oldToken)));
            Assert.That(await client.GetTextWithHeaderAsync("/get?key=a", newToken!), Is.EqualTo("kept"), "the data follows the new ID");
            Assert.That(await client.GetTextWithHeaderAsync("/get?key=a", oldToken), Is.EqualTo("(none)"), "the old ID is dead");
        });
    }

    [Test]
    public async Task HeaderAlsoSetsCookie_AHeaderRequestsNewId_ComesInTheHeaderAndTheCookie_AndItsEndExpiresBoth()
    {
        await using var host = await StartAsync(o => o.HeaderAlsoSetsCookie = true);
        var client = host.CreateRawClient();

        using var created = await client.SendWithHeaderAsync("/set?key=a&value=1", "");
        var token = created.SessionHeader();
        var cookie = created.SetCookieValue(host.CookieName);
        Assert.Multiple(() =>
        {
            Assert.That(token, Is.Not.Null.And.Not.Empty);
            Assert.That(cookie, Is.Not.Null, "the cookie is set beside the header");
            Assert.That(host.SessionIdOf(cookie!), Is.EqualTo(host.SessionIdOf(token!)), "one session in both");
        });

        var request = new HttpRequestMessage(HttpMethod.Get, "/abandon");
        request.Headers.Add(Header, token);
        request.Headers.Add("Cookie", $"{host.CookieName}={cookie}");
        using var ended = await client.SendAsync(request);

        Assert.Multiple(() =>
        {
            Assert.That(ended.SessionHeader(), Is.EqualTo(""));
            Assert.That(ended.SetCookies(host.CookieName).Single(), Does.Contain("expires=Thu, 01 Jan 1970"), "the cookie is expired too");
        });
    }

    [Test]
    public async Task Abandon_OverTheHeader_ReturnsTheHeaderEmpty_AndTheTokenIsDead()
    {
        await using var host = await StartAsync();
        var client = host.CreateRawClient();
        var token = await NewSessionAsync(client, "a", "1");

        using var response = await client.SendWithHeaderAsync("/abandon", token);

        Assert.Multiple(async () =>
        {
            Assert.That(response.SessionHeader(), Is.EqualTo(""), "an empty value: forget the token");
            Assert.That(response.SetCookies(host.CookieName), Is.Empty);
            Assert.That(await host.CountRowsAsync(), Is.Zero);
            Assert.That(await client.GetTextWithHeaderAsync("/get?key=a", token), Is.EqualTo("(none)"));
        });
    }

    [Test]
    public async Task RevokedSession_OverTheHeader_IsEmpty_TheHeaderIsCleared_AndAWriteGetsANewId()
    {
        await using var host = await StartAsync();
        var client = host.CreateRawClient();
        var token = await NewSessionAsync(client, "a", "1");
        await host.Services.GetRequiredService<ISessionManager>().RevokeAsync(host.SessionIdOf(token));

        using var read = await client.SendWithHeaderAsync("/get?key=a", token);
        using var write = await client.SendWithHeaderAsync("/set?key=b&value=2", token);

        Assert.Multiple(async () =>
        {
            Assert.That(await read.Content.ReadAsStringAsync(), Is.EqualTo("(none)"));
            Assert.That(read.SessionHeader(), Is.EqualTo(""), "the client is told to forget the dead token");
            Assert.That(write.SessionHeader(), Is.Not.Null.And.Not.Empty);
            Assert.That(host.SessionIdOf(write.SessionHeader()!), Is.Not.EqualTo(host.SessionIdOf(token)), "never the presented ID");
        });
    }

    [Test]
    public async Task IdleSession_OverTheHeader_Expires()
    {
        await using var host = await StartAsync(o => o.IdleTimeout = TimeSpan.FromMinutes(20));
        var client = host.CreateRawClient();
        var token = await NewSessionAsync(client, "a", "1");

        host.Time.Advance(TimeSpan.FromMinutes(19));
        var within = await client.GetTextWithHeaderAsync("/get?key=a", token);
        host.Time.Advance(TimeSpan.FromMinutes(21));
        var after = await client.GetTextWithHeaderAsync("/get?key=a", token);

        Assert.Multiple(() =>
        {
            Assert.That(within, Is.EqualTo("1"));
            Assert.That(after, Is.EqualTo("(none)"));
        });
    }

    [Test]
    public async Task HeaderAndCookie_TheHeaderWins_AndTheCookieIsLeftAlone()
    {
        await using var host = await StartAsync();
        var client = host.CreateRawClient();
        using var cookieResponse = await client.GetAsync("/set?key=who&value=cookie");
        var cookie = $"{host.CookieName}={cookieResponse.SetCookieValue(host.CookieName)}";
        var token = await NewSessionAsync(client, "who", "header");

        using var both = await client.SendWithHeaderAsync("/get?key=who", token, cookie);
        using var emptyHeaderWithCookie = await client.SendWithHeaderAsync("/set?key=who&value=new", "", cookie);

        Assert.Multiple(async () =>
        {
            Assert.That(await both.Content.ReadAsStringAsync(), Is.EqualTo("header"));
            Assert.That(emptyHeaderWithCookie.SessionHeader(), Is.Not.Null.And.Not.Empty, "an empty header asks for a header session");
            Assert.That(emptyHeaderWithCookie.SetCookies(host.CookieName), Is.Empty, "the cookie is neither replaced nor expired");
            Assert.That(await client.GetTextAsync("/get?key=who", cookie), Is.EqualTo("cookie"), "the cookie's session is untouched");
        });
    }

    [Test]
    public async Task HeaderNameOff_TheHeaderIsIgnored()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o => o.HeaderName = null, store: store);
        var client = host.CreateRawClient();
        using var created = await client.GetAsync("/set?key=a&value=1");
        var cookieValue = created.SetCookieValue(host.CookieName)!;

        using var response = await client.SendWithHeaderAsync("/get?key=a", cookieValue);

        Assert.Multiple(async () =>
        {
            Assert.That(await response.Content.ReadAsStringAsync(), Is.EqualTo("(none)"));
            Assert.That(response.Headers.Contains(Header), Is.False);
        });
    }

    /// <summary>Anything but a valid token of this app is a new empty session; a write under it gets a brand-new ID in the header.</summary>
    [TestCase("garbage")]
    [TestCase("not base64url!*")]
    [TestCase("oversized")]
    [TestCase("tampered")]
    [TestCase("another purpose")]
    [TestCase("wrong length")]
    public async Task BadHeader_IsANewEmptySession_NeverA500(string kind)
    {
        await using var host = await StartAsync();
        var client = host.CreateRawClient();
        var victim = await NewSessionAsync(client, "secret", "victim");
        var protector = host.Services.GetRequiredService<IDataProtectionProvider>();
        var value = kind switch
        {
            "oversized" => new string('A', 4_000),
            "tampered" => victim[..^2] + (victim[^2] == 'A' ? 'B' : 'A') + victim[^1],
            "another purpose" => WebEncoders.Base64UrlEncode(protector.CreateProtector("another purpose").Protect(SessionIds.NewSecretId(DateTimeOffset.UtcNow))),
            "wrong length" => WebEncoders.Base64UrlEncode(protector.CreateProtector(SessionIdProtector.Purpose).Protect(new byte[16])),
            _ => kind,
        };

        using var read = await client.SendWithHeaderAsync("/get?key=secret", value);
        using var write = await client.SendWithHeaderAsync("/set?key=mine&value=1", value);

        Assert.Multiple(async () =>
        {
            Assert.That(read.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(await read.Content.ReadAsStringAsync(), Is.EqualTo("(none)"));
            Assert.That(write.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(write.SetCookies(host.CookieName), Is.Empty);
            Assert.That(host.SessionIdOf(write.SessionHeader()!), Is.Not.EqualTo(host.SessionIdOf(victim)));
            Assert.That(host.Logs.GetSnapshot().Select(r => r.Id.Name), Does.Contain("HeaderRejected"));
        });
    }

    [Test]
    public async Task HeaderSentTwice_IsANewEmptySession()
    {
        await using var host = await StartAsync();
        var client = host.CreateRawClient();
        var token = await NewSessionAsync(client, "a", "1");
        using var request = new HttpRequestMessage(HttpMethod.Get, "/get?key=a");
        request.Headers.TryAddWithoutValidation(Header, [token, token]);

        using var response = await client.SendAsync(request);

        Assert.That(await response.Content.ReadAsStringAsync(), Is.EqualTo("(none)"));
    }

    [Test]
    public async Task NewSessionLimit_CountsHeaderClientsToo()
    {
        await using var host = await StartAsync(o =>
        {
            o.NewSessionLimit = 2;
            o.NewSessionLimitIncludesPrivateAddresses = true;
        });
        var client = host.CreateRawClient();
        var first = await NewSessionAsync(client, "a", "1");
        await NewSessionAsync(client, "a", "2");

        using var refused = await client.SendWithHeaderAsync("/set?key=a&value=3", "");
        using var live = await client.SendWithHeaderAsync("/set?key=b&value=1", first);

        Assert.Multiple(() =>
        {
            Assert.That(refused.StatusCode, Is.EqualTo(HttpStatusCode.TooManyRequests));
            Assert.That(refused.SessionHeader(), Is.Null, "nothing stored, no ID sent");
            Assert.That(live.StatusCode, Is.EqualTo(HttpStatusCode.OK), "a live session is never limited");
        });
    }

    [Test]
    public async Task LiveConnection_OpenedWithTheHeader_HoldsItsSession()
    {
        await using var host = await StartAsync();
        var client = host.CreateRawClient();
        var token = await NewSessionAsync(client, "a", "1");
        var connections = host.Services.GetRequiredService<LiveSessionConnections>();
        var opening = new DefaultHttpContext();
        opening.Request.Headers[Header] = token;

        using var lease = await connections.HoldAsync(opening, CancellationToken.None);

        Assert.That(lease, Is.Not.Null, "a hub connection of a header client (its handshake sends the header) is tied to the session");
    }

    /// <summary>
    /// Cookie authentication on the ticket store, from a client that keeps no cookies: the sign-in lives in the session,
    /// so the session header alone carries it; the authentication cookie is neither sent nor needed.
    /// </summary>
    [TestCase(false)]
    [TestCase(true)]
    public async Task TicketStoreSignIn_OverTheHeader_RenewsTheId_AndTheHeaderAloneSignsIn(bool authenticationFirst)
    {
        await using var host = await AuthTestApp.StartAsync(Folder.Path, configure: o => o.HeaderName = Header, authenticationBeforeSessions: authenticationFirst, store: store);
        var client = host.CreateRawClient();
        var before = await NewSessionAsync(client, "cart", "3");

        using var signIn = await client.SendWithHeaderAsync("/signin?user=alice", before);
        var token = signIn.SessionHeader();
        using var admin = await client.SendWithHeaderAsync("/admin-only", token!);

        Assert.Multiple(async () =>
        {
            Assert.That(signIn.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(signIn.Headers.Contains("Set-Cookie"), Is.False, "no session cookie, no authentication cookie");
            Assert.That(host.SessionIdOf(token!), Is.Not.EqualTo(host.SessionIdOf(before)), "signing in renews the ID");
            Assert.That(await client.GetTextWithHeaderAsync("/whoami", token!), Is.EqualTo("alice"));
            Assert.That(admin.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(await client.GetTextWithHeaderAsync("/get?key=cart", token!), Is.EqualTo("3"), "the data follows the sign-in");
            Assert.That(await client.GetTextWithHeaderAsync("/whoami", before), Is.EqualTo("anonymous"), "the pre-sign-in ID is dead");
        });
    }

    /// <summary>An anonymous header client is not an authentication failure: no stand-in for the authentication cookie is read.</summary>
    [TestCase(false, true)]
    [TestCase(true, false)]
    public async Task AnonymousHeaderClient_IsNoAuthenticationFailure(bool authenticationFirst, bool withSession)
    {
        await using var host = await AuthTestApp.StartAsync(Folder.Path, configure: o => o.HeaderName = Header, authenticationBeforeSessions: authenticationFirst, store: store);
        var client = host.CreateRawClient();
        var token = withSession ? await NewSessionAsync(client, "a", "1") : "";

        var who = await client.GetTextWithHeaderAsync("/whoami", token);

        Assert.Multiple(() =>
        {
            Assert.That(who, Is.EqualTo("anonymous"));
            Assert.That(host.Logs.GetSnapshot().Select(r => r.Id.Name), Does.Not.Contain("AuthenticationSchemeNotAuthenticatedWithFailure"));
        });
    }

    [Test]
    public async Task TicketStoreSignOutAndRevoke_OverTheHeader_LeaveTheClientAnonymous()
    {
        await using var host = await AuthTestApp.StartAsync(Folder.Path, configure: o => o.HeaderName = Header, store: store);
        var client = host.CreateRawClient();
        using var first = await client.SendWithHeaderAsync("/signin?user=alice", "");
        using var second = await client.SendWithHeaderAsync("/signin?user=alice", "");
        var signedOut = first.SessionHeader()!;
        var revoked = second.SessionHeader()!;

        using var signOut = await client.SendWithHeaderAsync("/signout", signedOut);
        var revokedCount = await client.GetTextAsync("/revoke?user=alice");
        using var afterRevoke = await client.SendWithHeaderAsync("/admin-only", revoked);

        Assert.Multiple(async () =>
        {
            Assert.That(signOut.SessionHeader(), Is.EqualTo(""), "signing out ends the session: forget the token");
            Assert.That(signOut.Headers.Contains("Set-Cookie"), Is.False);
            Assert.That(await client.GetTextWithHeaderAsync("/whoami", signedOut), Is.EqualTo("anonymous"));
            Assert.That(revokedCount, Is.EqualTo("1"));
            Assert.That(afterRevoke.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
        });
    }

    [Test]
    public async Task TicketStoreSignIn_OfACookieClient_StillUsesCookies_WhenTheHeaderIsOn()
    {
        await using var host = await AuthTestApp.StartAsync(Folder.Path, configure: o => o.HeaderName = Header, store: store);
        var browser = host.CreateBrowser();

        using var signIn = await browser.GetAsync("/signin?user=bob");

        Assert.Multiple(async () =>
        {
            Assert.That(signIn.Headers.Contains(Header), Is.False);
            Assert.That(await browser.GetStringAsync("/whoami"), Is.EqualTo("bob"));
        });
    }

    /// <summary>Creates a session through the header (an empty one first, as a new client sends) and returns its token.</summary>
    private static async Task<string> NewSessionAsync(HttpClient client, string key, string value)
    {
        using var response = await client.SendWithHeaderAsync($"/set?key={key}&value={value}", "");
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        return response.SessionHeader() ?? throw new AssertionException("no session header in the response");
    }
}

internal static class SessionHeaderHttpExtensions
{
    private const string Header = "X-Session";

    /// <summary>The value of the response's session header (empty when it says "forget"), or null when it has none.</summary>
    public static string? SessionHeader(this HttpResponseMessage response) =>
        response.Headers.TryGetValues(Header, out var values) ? values.Single() : null;

    public static Task<HttpResponseMessage> SendWithHeaderAsync(this HttpClient client, string path, string headerValue, string? cookieHeader = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.TryAddWithoutValidation(Header, headerValue);
        if (cookieHeader is not null)
        {
            request.Headers.TryAddWithoutValidation("Cookie", cookieHeader);
        }

        return client.SendAsync(request);
    }

    public static async Task<string> GetTextWithHeaderAsync(this HttpClient client, string path, string headerValue)
    {
        using var response = await client.SendWithHeaderAsync(path, headerValue);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), $"GET {path}");
        return await response.Content.ReadAsStringAsync();
    }
}
