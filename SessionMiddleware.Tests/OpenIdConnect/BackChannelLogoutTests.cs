using System.Diagnostics.Metrics;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Ids;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests.OpenIdConnect;

/// <summary>
/// OpenID Connect Back-Channel Logout end to end: a real sign-in through the authorization code flow against
/// <see cref="TestOpenIdProvider"/>, then the provider posts a logout token to the app's endpoint and the browser's next
/// request is anonymous; other provider sessions stay signed in. SQLite store, real Kestrel.
/// </summary>
public sealed class BackChannelLogoutTests : TempFolderTest
{
    private FakeTimeProvider _time = null!;
    private TestOpenIdProvider _provider = null!;
    private OpenIdConnectTestApp _app = null!;

    [SetUp]
    public async Task SetUp()
    {
        // Near the real clock: the OpenID Connect handler checks the id_token's lifetime against it.
        _time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
        _provider = await TestOpenIdProvider.StartAsync(_time);
        _app = await OpenIdConnectTestApp.StartAsync(Folder.Path, _provider, _time);
    }

    [TearDown]
    public async Task TearDown()
    {
        await _app.DisposeAsync();
        await _provider.DisposeAsync();
    }

    private OpenIdConnectBrowser NewBrowser() => new(_app.Host);

    private async Task<OpenIdConnectBrowser> SignedInAsync(string subject)
    {
        var browser = NewBrowser();
        Assert.That(await browser.SignInAsync(_provider, subject), Is.EqualTo(subject), "signed in through the code flow");
        return browser;
    }

    [Test]
    public async Task CodeFlowSignIn_HonoursPkceAndNonce_AndCarriesTheProvidersSidAndSubjectWithItsIssuer()
    {
        using var browser = await SignedInAsync("alice");

        var claims = (await browser.GetStringAsync("/claims")).Split('\n');

        Assert.That(_provider.AuthorizeRequests, Is.EqualTo(1), "the handler sent a PKCE challenge and a nonce");
        Assert.That(claims, Has.Some.Matches<string>(c => c.EndsWith($"|{browser.ProviderSid}|{_provider.Issuer}", StringComparison.Ordinal)), "the sid claim, issued by the provider");
        Assert.That(claims, Has.Some.Matches<string>(c => c.EndsWith($"|alice|{_provider.Issuer}", StringComparison.Ordinal)), "the sub claim, issued by the provider");
        Assert.That(await browser.GetStringAsync("/signin-facts"), Is.EqualTo($"{_provider.Issuer}|{browser.ProviderSid}|alice"), "what the ticket store records");
    }

    [Test]
    public async Task CodeFlowSignIn_StoresTheProvidersIssuerSidAndSubjectInTheSessionRow()
    {
        using var browser = await SignedInAsync("alice");
        var sessionId = (await browser.GetStringAsync("/me")).Split(' ')[1];
        Assert.That(SessionIds.TryParsePublicId(sessionId, out var key), Is.True);

        var row = await _app.Host.Services.GetRequiredService<IServerSideSessionStore>().LoadAsync(key!);

        Assert.That(row?.SignIn, Is.Not.Null);
        Assert.That((row!.SignIn!.Issuer, row.SignIn.Sid, row.SignIn.Subject), Is.EqualTo((_provider.Issuer, browser.ProviderSid, "alice")));
    }

    [Test]
    public async Task LogoutToken_EndsTheSessionOfThatProviderSession_AndOnlyIt()
    {
        using var alice = await SignedInAsync("alice");
        using var aliceElsewhere = await SignedInAsync("alice");
        using var bob = await SignedInAsync("bob");
        var aliceSession = (await alice.GetStringAsync("/me")).Split(' ')[1];

        var (status, cacheControl, _) = await TestOpenIdProvider.PostLogoutAsync(_app.LogoutEndpoint, _provider.LogoutToken(alice.ProviderSid, "alice"));

        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(cacheControl, Is.EqualTo("no-store"));
        Assert.That(await alice.GetStringAsync("/whoami"), Is.EqualTo("anonymous"), "alice's next request is anonymous");
        Assert.That(await aliceElsewhere.GetStringAsync("/whoami"), Is.EqualTo("alice"), "alice's other provider session (another sid) is untouched");
        Assert.That(await bob.GetStringAsync("/whoami"), Is.EqualTo("bob"), "bob's session (another sid) is untouched");
        Assert.That(_app.Ended.Where(e => e.SessionId == aliceSession).Select(e => e.Reason), Is.EqualTo(new[] { SessionEndReason.ProviderSignedOut }));
        Assert.That(_app.Ended.Select(e => e.SessionId).ToList(), Has.Count.EqualTo(1), "only alice's session ended");
    }

    [Test]
    public async Task LogoutTokenWithoutSid_EndsEverySessionOfThatSubjectAtThatIssuer()
    {
        using var first = await SignedInAsync("alice");
        using var second = await SignedInAsync("alice");
        using var bob = await SignedInAsync("bob");

        var (status, _, _) = await TestOpenIdProvider.PostLogoutAsync(_app.LogoutEndpoint, _provider.LogoutToken(sid: null, sub: "alice"));

        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(await first.GetStringAsync("/whoami"), Is.EqualTo("anonymous"), "alice's first browser");
        Assert.That(await second.GetStringAsync("/whoami"), Is.EqualTo("anonymous"), "alice's second browser");
        Assert.That(await bob.GetStringAsync("/whoami"), Is.EqualTo("bob"));
        Assert.That(_app.Ended.Select(e => e.Reason), Is.EqualTo(new[] { SessionEndReason.ProviderSignedOut, SessionEndReason.ProviderSignedOut }));
    }

    [Test]
    public async Task LogoutTokenMatchingNoSession_Answers200()
    {
        using var alice = await SignedInAsync("alice");

        var (status, cacheControl, _) = await TestOpenIdProvider.PostLogoutAsync(_app.LogoutEndpoint, _provider.LogoutToken("no-such-sid", null));

        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(cacheControl, Is.EqualTo("no-store"));
        Assert.That(await alice.GetStringAsync("/whoami"), Is.EqualTo("alice"));
    }

    /// <summary>Each way a logout token can be wrong (OpenID Connect Back-Channel Logout 1.0, section 2.6).</summary>
    private static IEnumerable<TestCaseData> SpoiledTokens()
    {
        yield return Case("wrong audience", p => p["aud"] = "another-client");
        yield return Case("wrong issuer", p => p["iss"] = "http://127.0.0.1:1");
        yield return Case("iat 10 minutes old", p => p["iat"] = p["iat"]!.GetValue<long>() - 600);
        yield return Case("iat 10 minutes ahead", p => p["iat"] = p["iat"]!.GetValue<long>() + 600);
        yield return Case("no iat", p => p.Remove("iat"));
        yield return Case("expired", p => p["exp"] = p["iat"]!.GetValue<long>() - 120);
        yield return Case("nonce present", p => p["nonce"] = "n-0S6_WzA2Mj");
        yield return Case("no events claim", p => p.Remove("events"));
        yield return Case("events without the logout member", p => p["events"] = new JsonObject { ["http://schemas.openid.net/event/other"] = new JsonObject() });
        yield return Case("events member not an object", p => p["events"] = new JsonObject { [TestOpenIdProvider.BackChannelLogoutEvent] = "yes" });
        yield return Case("neither sid nor sub", p =>
        {
            p.Remove("sid");
            p.Remove("sub");
        });
        yield return Case("no jti", p => p.Remove("jti"));

        static TestCaseData Case(string name, Action<JsonObject> spoil) => new TestCaseData(spoil).SetArgDisplayNames(name);
    }

    [TestCaseSource(nameof(SpoiledTokens))]
    public async Task SpoiledLogoutToken_IsRefusedWith400_AndTheSessionLives(Action<JsonObject> spoil)
    {
        using var alice = await SignedInAsync("alice");

        var response = await TestOpenIdProvider.PostLogoutAsync(_app.LogoutEndpoint, _provider.LogoutToken(alice.ProviderSid, "alice", spoil));

        await AssertRefusedAsync(response, alice);
    }

    [Test]
    public async Task ForgedSignature_IsRefused()
    {
        using var alice = await SignedInAsync("alice");

        var forged = _provider.LogoutToken(alice.ProviderSid, "alice", signWith: TestOpenIdProvider.ForgedKey());

        await AssertRefusedAsync(await TestOpenIdProvider.PostLogoutAsync(_app.LogoutEndpoint, forged), alice);
    }

    [Test]
    public async Task TokenSignedWithAKeyThatRolledInAfterTheSignIn_IsAccepted_TheKeysReadAgain()
    {
        using var alice = await SignedInAsync("alice");

        _provider.RollSigningKey();
        var (status, _, _) = await TestOpenIdProvider.PostLogoutAsync(_app.LogoutEndpoint, _provider.LogoutToken(alice.ProviderSid, "alice"));

        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(await alice.GetStringAsync("/whoami"), Is.EqualTo("anonymous"));
    }

    [Test]
    public async Task ReplayedToken_IsRefused_TheSecondTime()
    {
        using var alice = await SignedInAsync("alice");
        var token = _provider.LogoutToken(sid: null, sub: "alice");
        var (first, _, _) = await TestOpenIdProvider.PostLogoutAsync(_app.LogoutEndpoint, token);
        using var again = await SignedInAsync("alice");

        var replay = await TestOpenIdProvider.PostLogoutAsync(_app.LogoutEndpoint, token);

        Assert.That(first, Is.EqualTo(HttpStatusCode.OK));
        await AssertRefusedAsync(replay, again);
    }

    [Test]
    public async Task EndingFailsInTheStore_500_AndTheProvidersRetryOfTheSameTokenIsNotTakenForAReplay()
    {
        FailingSignInDeletes fault = null!;
        var folder = Directory.CreateDirectory(Path.Combine(Folder.Path, "faulty")).FullName;
        await using var app = await OpenIdConnectTestApp.StartAsync(
            folder,
            _provider,
            _time,
            services: s => s.UseStore(sp =>
            {
                (var store, fault) = FailingSignInDeletes.Wrap(Infrastructure.SessionTestHost.RealStore(sp));
                return store;
            }));
        using var alice = new OpenIdConnectBrowser(app.Host);
        await alice.SignInAsync(_provider, "alice");
        var token = _provider.LogoutToken(alice.ProviderSid, "alice");

        fault.Failing = true;
        var (failed, _, _) = await TestOpenIdProvider.PostLogoutAsync(app.LogoutEndpoint, token);
        fault.Failing = false;
        var (retried, _, _) = await TestOpenIdProvider.PostLogoutAsync(app.LogoutEndpoint, token);

        Assert.That(failed, Is.EqualTo(HttpStatusCode.InternalServerError));
        Assert.That(retried, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(await alice.GetStringAsync("/whoami"), Is.EqualTo("anonymous"));
    }

    [Test]
    public async Task TokenOlderThanTheWindow_IsRefused_WhenTheClockMoved()
    {
        using var alice = await SignedInAsync("alice");
        var token = _provider.LogoutToken(alice.ProviderSid, "alice", p => p.Remove("exp"));

        _time.Advance(TimeSpan.FromMinutes(5) + TimeSpan.FromSeconds(1));

        await AssertRefusedAsync(await TestOpenIdProvider.PostLogoutAsync(_app.LogoutEndpoint, token), alice);
    }

    [Test]
    public async Task Get_IsRefused()
    {
        using var alice = await SignedInAsync("alice");
        using var client = new HttpClient();

        using var response = await client.GetAsync(new Uri(_app.LogoutEndpoint + "?logout_token=" + _provider.LogoutToken(alice.ProviderSid, "alice")));

        await AssertRefusedAsync((response.StatusCode, response.Headers.CacheControl?.ToString(), await response.Content.ReadAsStringAsync()), alice);
    }

    [Test]
    public async Task PostWithoutLogoutToken_IsRefused()
    {
        using var alice = await SignedInAsync("alice");

        var response = await TestOpenIdProvider.PostLogoutAsync(_app.LogoutEndpoint, _provider.LogoutToken(alice.ProviderSid, "alice"), field: "id_token");

        await AssertRefusedAsync(response, alice);
    }

    [Test]
    public async Task EachLogout_IsCountedByOutcome_AndARefusalIsLoggedWithoutTheToken()
    {
        using var alice = await SignedInAsync("alice");
        using var logouts = new MetricCollector<long>(_app.Host.Services.GetRequiredService<IMeterFactory>(), ServerSideSessionDiagnostics.MeterName, "sessionmiddleware.backchannel_logouts");
        var forged = _provider.LogoutToken(alice.ProviderSid, "alice", signWith: TestOpenIdProvider.ForgedKey());

        await TestOpenIdProvider.PostLogoutAsync(_app.LogoutEndpoint, forged);
        await TestOpenIdProvider.PostLogoutAsync(_app.LogoutEndpoint, _provider.LogoutToken(alice.ProviderSid, "alice"));
        await TestOpenIdProvider.PostLogoutAsync(_app.LogoutEndpoint, _provider.LogoutToken("no-such-sid", null));

        var outcomes = logouts.GetMeasurementSnapshot().Select(m => (string)m.Tags["outcome"]!).ToList();
        Assert.That(outcomes, Is.EqualTo(new[] { "refused", "ended", "no_session" }));
        var refusals = _app.Host.Logs.GetSnapshot().Where(r => r.Id.Id == 2500).ToList();
        Assert.That(refusals, Has.Count.EqualTo(1));
        Assert.That(refusals[0].Level, Is.EqualTo(LogLevel.Warning));
        Assert.That(refusals[0].Message, Does.Contain("signature"));
        Assert.That(_app.Host.Logs.GetSnapshot().Select(r => r.Message), Has.None.Contains(forged.Split('.')[1]), "no log carries the token");
    }

    private async Task AssertRefusedAsync((HttpStatusCode Status, string? CacheControl, string Body) response, OpenIdConnectBrowser browser)
    {
        Assert.That(response.Status, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(response.CacheControl, Is.EqualTo("no-store"));
        var error = JsonNode.Parse(response.Body)!;
        Assert.That(error["error"]!.GetValue<string>(), Is.EqualTo("invalid_request"));
        Assert.That(error["error_description"]!.GetValue<string>(), Is.Not.Empty);
        Assert.That(await browser.GetStringAsync("/whoami"), Is.Not.EqualTo("anonymous"), "the session lives");
    }
}
