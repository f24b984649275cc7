using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests.OpenIdConnect;

/// <summary>
/// Back-channel logout across two app servers on one PostgreSQL database: the user signs in through the code flow on
/// node B, the provider's logout token reaches node A, and the session used on B ends there (its next request is
/// anonymous); another user's session on B stays.
/// </summary>
public sealed class BackChannelLogoutTwoNodeTests : TempFolderTest
{
    private PostgresServer _server = null!;
    private string _connectionString = null!;
    private TestOpenIdProvider _provider = null!;
    private OpenIdConnectTestApp _a = null!;
    private OpenIdConnectTestApp _b = null!;

    [SetUp]
    public async Task SetUp()
    {
        // Near the real clock: the OpenID Connect handler checks the id_token's lifetime against it.
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
        _server = await PostgresServer.SharedAsync();
        _connectionString = await _server.CreateDatabaseAsync();
        _provider = await TestOpenIdProvider.StartAsync(time);
        var keys = Path.Combine(Folder.Path, "shared-keys");
        _a = await OpenIdConnectTestApp.StartAsync(Path.Combine(Folder.Path, "a"), _provider, time, services: s => s.UsePostgreSql(_connectionString), keysFolder: keys);
        _b = await OpenIdConnectTestApp.StartAsync(Path.Combine(Folder.Path, "b"), _provider, time, services: s => s.UsePostgreSql(_connectionString), keysFolder: keys);
    }

    [TearDown]
    public async Task TearDown()
    {
        await _a.DisposeAsync();
        await _b.DisposeAsync();
        await _provider.DisposeAsync();
        await _server.DropDatabaseAsync(_connectionString);
    }

    [Test]
    public async Task LogoutTokenPostedToA_EndsTheSessionSignedInAndUsedOnB()
    {
        using var alice = new OpenIdConnectBrowser(_b.Host);
        using var bob = new OpenIdConnectBrowser(_b.Host);
        Assert.That(await alice.SignInAsync(_provider, "alice"), Is.EqualTo("alice"), "signed in on B through the code flow");
        Assert.That(await bob.SignInAsync(_provider, "bob"), Is.EqualTo("bob"));
        var aliceSession = (await alice.GetStringAsync("/me")).Split(' ')[1];

        var (status, cacheControl, _) = await TestOpenIdProvider.PostLogoutAsync(_a.LogoutEndpoint, _provider.LogoutToken(alice.ProviderSid, "alice"));

        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(cacheControl, Is.EqualTo("no-store"));
        Assert.That(await alice.GetStringAsync("/whoami"), Is.EqualTo("anonymous"), "alice's next request on B is anonymous");
        Assert.That(await bob.GetStringAsync("/whoami"), Is.EqualTo("bob"), "bob's session on B stays");
        Assert.That(_a.Ended.Select(e => (e.SessionId, e.Reason)), Is.EqualTo(new[] { (aliceSession, SessionEndReason.ProviderSignedOut) }), "A raised the end it made");
    }

    [Test]
    public async Task LogoutTokenWithoutSidPostedToA_EndsEverySessionOfTheSubjectOnB()
    {
        using var first = new OpenIdConnectBrowser(_b.Host);
        using var second = new OpenIdConnectBrowser(_a.Host);
        Assert.That(await first.SignInAsync(_provider, "alice"), Is.EqualTo("alice"));
        Assert.That(await second.SignInAsync(_provider, "alice"), Is.EqualTo("alice"));

        var (status, _, _) = await TestOpenIdProvider.PostLogoutAsync(_a.LogoutEndpoint, _provider.LogoutToken(sid: null, sub: "alice"));

        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(await first.GetStringAsync("/whoami"), Is.EqualTo("anonymous"), "the browser signed in on B");
        Assert.That(await second.GetStringAsync("/whoami"), Is.EqualTo("anonymous"), "the browser signed in on A");
    }
}
