using System.Collections.Concurrent;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests.SessionLimits;

/// <summary>
/// <see cref="ServerSideSessionOptions.MaxSessionsPerUser"/> across two app servers on one PostgreSQL database: 50
/// browsers sign the same user in at once, half through node A and half through node B, and exactly the cap remains.
/// </summary>
public sealed class SessionLimitTwoNodeTests : TempFolderTest
{
    private const int Cap = 3;
    private PostgresServer _server = null!;
    private string _connectionString = null!;

    [SetUp]
    public async Task SetUp()
    {
        _server = await PostgresServer.SharedAsync();
        _connectionString = await _server.CreateDatabaseAsync();
    }

    [TearDown]
    public async Task TearDown() => await _server.DropDatabaseAsync(_connectionString);

    [TestCase(MaxSessionsBehavior.EndLeastRecentlyUsed)]
    [TestCase(MaxSessionsBehavior.RefuseSignIn)]
    public async Task FiftySimultaneousSignIns_AcrossTwoNodes_LeaveExactlyTheCap(MaxSessionsBehavior behavior)
    {
        var keys = Path.Combine(Folder.Path, "shared-keys");
        var time = StoreFactory.NewTime();
        var ended = new ConcurrentQueue<string>();
        void Configure(ServerSideSessionOptions o)
        {
            o.MaxSessionsPerUser = Cap;
            o.WhenMaxSessionsReached = behavior;
            o.Events.OnEnded = c =>
            {
                ended.Enqueue(c.Reason);
                return Task.CompletedTask;
            };
        }

        await using var a = await AuthTestApp.StartAsync(Path.Combine(Folder.Path, "a"), time, services: s => s.UsePostgreSql(_connectionString), configure: Configure, keysFolder: keys);
        await using var b = await AuthTestApp.StartAsync(Path.Combine(Folder.Path, "b"), time, services: s => s.UsePostgreSql(_connectionString), configure: Configure, keysFolder: keys);
        var browsers = Enumerable.Range(0, 50).Select(i => (i % 2 == 0 ? a : b).CreateBrowser()).ToList();
        var (statuses, signedIn) = await SignInRace.RunAsync(browsers, "alice");

        Assert.Multiple(async () =>
        {
            Assert.That(await a.Services.GetRequiredService<ISessionManager>().ListForUserAsync("alice"), Has.Count.EqualTo(Cap));
            Assert.That(signedIn, Is.EqualTo(Cap));
            Assert.That(statuses.Count(s => s == HttpStatusCode.OK), Is.EqualTo(behavior == MaxSessionsBehavior.RefuseSignIn ? Cap : 50));
            Assert.That(statuses.Count(s => s == HttpStatusCode.Conflict), Is.EqualTo(behavior == MaxSessionsBehavior.RefuseSignIn ? 50 - Cap : 0));
            Assert.That(ended.Count(r => r == SessionEndReason.SessionLimit), Is.EqualTo(behavior == MaxSessionsBehavior.RefuseSignIn ? 0 : 50 - Cap), "each displaced session's end raised once, on the node that displaced it");
        });
    }
}
