using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.PostgreSql.ChangeFeed;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests.ChangeFeed;

/// <summary>
/// Two app servers on one PostgreSQL database: a long request on node A holds its session open
/// (<see cref="IServerSideSession.Ended"/>); ending the session on node B (revoke, revoke of the user's sessions,
/// sign-out, a renewal to another user) ends it on A promptly, over LISTEN/NOTIFY; a renewal of the same user on B keeps it
/// open on A under the new ID; an end committed while A's feed was disconnected still ends it once A is back.
/// </summary>
public sealed class ChangeFeedTwoNodeTests : TempFolderTest
{
    /// <summary>Generous: proves the end is pushed (the alternative is the session's expiry, minutes away).</summary>
    private static readonly TimeSpan Promptly = TimeSpan.FromSeconds(10);

    private PostgresServer _server = null!;
    private string _connectionString = null!;
    private FakeTimeProvider _time = null!;
    private SessionTestHost _a = null!;
    private SessionTestHost _b = null!;

    [SetUp]
    public async Task SetUp()
    {
        _time = StoreFactory.NewTime();
        _server = await PostgresServer.SharedAsync();
        _connectionString = await _server.CreateDatabaseAsync();
        var keys = Path.Combine(Folder.Path, "shared-keys");
        _a = await SessionTestHost.StartAsync(Path.Combine(Folder.Path, "a"), services: s => s.UsePostgreSql(_connectionString), endpoints: HeldRequest.Map, time: _time, keysFolder: keys);
        _b = await SessionTestHost.StartAsync(Path.Combine(Folder.Path, "b"), services: s => s.UsePostgreSql(_connectionString), time: _time, keysFolder: keys);
    }

    [TearDown]
    public async Task TearDown()
    {
        await _a.DisposeAsync();
        await _b.DisposeAsync();
        await _server.DropDatabaseAsync(_connectionString);
    }

    private PostgreSqlChangeFeed FeedOfA => (PostgreSqlChangeFeed)_a.Services.GetRequiredService<ISessionChangeFeed>();

    private ISessionManager ManagerOnB => _b.Services.GetRequiredService<ISessionManager>();

    /// <summary>A session stored through A (bound to <paramref name="user"/> when given): its cookie header.</summary>
    private async Task<string> NewSessionAsync(string? user = null)
    {
        using var response = await _a.CreateRawClient().GetAsync(user is null ? "/set?key=k&value=v" : $"/bind?user={user}");
        return $"{_a.CookieName}={response.SetCookieValue(_a.CookieName)}";
    }

    /// <summary>A session held open on A, once A's feed listens (it starts with the first session held).</summary>
    private async Task<(string Cookie, HeldRequest Held)> HoldOnAAsync(string? user = null)
    {
        var cookie = await NewSessionAsync(user);
        var held = await HeldRequest.StartAsync(_a.CreateRawClient(), cookie);
        var waited = Stopwatch.StartNew();
        while (FeedOfA.ProcessId == 0 && waited.Elapsed < Promptly)
        {
            await Task.Delay(10);
        }

        Assert.That(FeedOfA.ProcessId, Is.Not.Zero, "A's change feed listens once a session is held");
        return (cookie, held);
    }

    [Test]
    public async Task RevokeOnB_EndsTheSessionHeldOnA()
    {
        var (cookie, held) = await HoldOnAAsync();
        using var _ = held;

        var revoked = await ManagerOnB.RevokeAsync(_a.SessionIdOf(cookie));

        Assert.That(revoked, Is.True);
        Assert.That(await held.EndsWithinAsync(Promptly), Is.True, "the request on A ends with the revoke on B");
    }

    [Test]
    public async Task RevokeAllForUserOnB_EndsEachOfTheUsersSessionsHeldOnA()
    {
        var (_, first) = await HoldOnAAsync("ann");
        var (_, second) = await HoldOnAAsync("ann");
        var (_, other) = await HoldOnAAsync("bob");
        using var a1 = first;
        using var a2 = second;
        using var b1 = other;

        var ended = await ManagerOnB.RevokeAllForUserAsync("ann");

        Assert.That(ended, Is.EqualTo(2));
        Assert.That(await first.EndsWithinAsync(Promptly), Is.True, "ann's first session ends on A");
        Assert.That(await second.EndsWithinAsync(Promptly), Is.True, "ann's second session ends on A");
        Assert.That(other.Rest.IsCompleted, Is.False, "bob's session stays open");
    }

    [Test]
    public async Task SignOutOnB_EndsTheSessionHeldOnA()
    {
        var (cookie, held) = await HoldOnAAsync("ann");
        using var _ = held;

        using var signedOut = await _b.CreateRawClient().SendWithCookieAsync("/abandon", cookie);

        Assert.That(signedOut.IsSuccessStatusCode, Is.True);
        Assert.That(await held.EndsWithinAsync(Promptly), Is.True, "the request on A ends with the sign-out on B");
    }

    [Test]
    public async Task RenewalOfTheSameUserOnB_KeepsTheSessionOnAUnderTheNewId_WhoseRevokeThenEndsIt()
    {
        var (cookie, held) = await HoldOnAAsync("ann");
        using var _ = held;

        using var renewed = await _b.CreateRawClient().SendWithCookieAsync("/regenerate", cookie);
        var newId = await renewed.Content.ReadAsStringAsync();
        await AllNotifiedToAAsync();
        var openAfterRenewal = !held.Rest.IsCompleted;
        await ManagerOnB.RevokeAsync(newId);

        Assert.That(newId, Is.Not.EqualTo(_a.SessionIdOf(cookie)), "the renewal gave a new ID");
        Assert.That(openAfterRenewal, Is.True, "the same user's session stays open on A after its renewal on B");
        Assert.That(await held.EndsWithinAsync(Promptly), Is.True, "a revoke of the new ID ends it on A");
    }

    [Test]
    public async Task RenewalToAnotherUserOnB_EndsTheSessionHeldOnA()
    {
        var (cookie, held) = await HoldOnAAsync("ann");
        using var _ = held;

        using var rebound = await _b.CreateRawClient().SendWithCookieAsync("/bind?user=bob", cookie);

        Assert.That(rebound.IsSuccessStatusCode, Is.True);
        Assert.That(await held.EndsWithinAsync(Promptly), Is.True, "a session now bound to another user ends on A");
    }

    [Test]
    public async Task EndWhileAsFeedIsDisconnected_EndsTheSessionOnAOnceItReconnects()
    {
        var (cookie, held) = await HoldOnAAsync();
        using var _ = held;
        var feed = FeedOfA;
        feed.FirstRetryDelay = TimeSpan.FromSeconds(2);   // long enough for B's revoke to land while A is away

        await PostgresServer.ScalarAsync<bool>(_connectionString, $"SELECT pg_terminate_backend({feed.ProcessId})");
        var waited = Stopwatch.StartNew();
        while (!_a.Logs.GetSnapshot().Any(r => r.Id.Name == "PostgreSqlChangeFeedLost") && waited.Elapsed < Promptly)
        {
            await Task.Delay(10);
        }

        var lostBeforeRevoke = feed.ProcessId == 0;
        var revoked = await ManagerOnB.RevokeAsync(_a.SessionIdOf(cookie));
        var endedWhileAway = held.Rest.IsCompleted;

        Assert.That(lostBeforeRevoke, Is.True, "A noticed its listening connection was gone");
        Assert.That(revoked, Is.True);
        Assert.That(endedWhileAway, Is.False, "nothing reached A while it was disconnected");
        Assert.That(await held.EndsWithinAsync(Promptly), Is.True, "A's check after reconnecting ends the session");
        Assert.That(_a.Logs.GetSnapshot().Any(r => r.Id.Name == "LiveSessionsResynchronized"), Is.True);
    }

    [Test]
    public async Task AnUnreadableNotification_MakesACheckWhatItHolds()
    {
        var (cookie, held) = await HoldOnAAsync();
        using var _ = held;
        // Deleted without a notification (as by hand): nothing tells A, until a notification it cannot read.
        await PostgresServer.ScalarAsync<int>(_connectionString, $"WITH d AS (DELETE FROM sessions WHERE id = decode('{_a.SessionIdOf(cookie)}', 'hex') RETURNING 1) SELECT count(*)::int FROM d");
        var endedBefore = held.Rest.IsCompleted;

        await PostgresServer.ScalarAsync<int>(_connectionString, "SELECT 1 FROM pg_notify('sessions_changes', 'z,from a newer version')");

        Assert.That(endedBefore, Is.False);
        Assert.That(await held.EndsWithinAsync(Promptly), Is.True, "A checked the sessions it holds and found this one gone");
        Assert.That(_a.Logs.GetSnapshot().Any(r => r.Id.Name == "PostgreSqlChangeFeedUnreadable"), Is.True);
    }

    [Test]
    public async Task AnIdleFeed_SendsNoQuery()
    {
        var (_, held) = await HoldOnAAsync();
        using var _ = held;
        var activity = $"SELECT state || ' ' || query || ' ' || state_change FROM pg_stat_activity WHERE pid = {FeedOfA.ProcessId}";
        var before = await PostgresServer.ScalarAsync<string>(_connectionString, activity);

        await Task.Delay(TimeSpan.FromSeconds(3));   // real time: nothing should happen on the feed's connection
        var after = await PostgresServer.ScalarAsync<string>(_connectionString, activity);

        TestContext.Progress.WriteLine($"the feed's backend while idle: {after}");
        Assert.That(before, Does.StartWith("idle LISTEN"));
        Assert.That(after, Is.EqualTo(before), "no statement ran on the feed's connection while idle");
    }

    [Test]
    public async Task HundredRevokesOnB_OfSessionsHeldOnA_LatencyMeasured()
    {
        const int revokes = 100;
        var latencies = new List<double>(revokes);
        for (var i = 0; i < revokes; i++)
        {
            var (cookie, held) = await HoldOnAAsync();
            using var _ = held;
            var id = _a.SessionIdOf(cookie);
            var clock = Stopwatch.StartNew();
            await ManagerOnB.RevokeAsync(id);
            Assert.That(await held.EndsWithinAsync(Promptly), Is.True, $"revoke {i + 1}: the held request ends within {Promptly.TotalSeconds} s of its revoke on B");
            latencies.Add(clock.Elapsed.TotalMilliseconds);
        }

        latencies.Sort();
        TestContext.Progress.WriteLine(
            $"revoke on B → request held on A ended ({revokes} revokes, one at a time, RevokeAsync included): " +
            $"p50 {Percentile(latencies, 0.50):F1} ms, p99 {Percentile(latencies, 0.99):F1} ms, max {latencies[^1]:F1} ms");
    }

    /// <summary>
    /// Waits until every notification committed so far has reached A: notifications come in commit order, so once a
    /// later end (of a session held for this purpose) has ended its request on A, the earlier ones were handled.
    /// </summary>
    private async Task AllNotifiedToAAsync()
    {
        var (cookie, held) = await HoldOnAAsync();
        using var _ = held;
        await ManagerOnB.RevokeAsync(_a.SessionIdOf(cookie));
        Assert.That(await held.EndsWithinAsync(Promptly), Is.True, "the marker session's end reached A");
    }

    private static double Percentile(List<double> sorted, double p) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
}
