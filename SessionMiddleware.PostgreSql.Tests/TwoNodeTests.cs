using System.Net;
using System.Security.Cryptography;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Cleanup;
using SessionMiddleware.Cookies;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// Two app servers (two Kestrel hosts, each with its own Data Protection setup pointed at one shared key folder,
/// as a real deployment must) over one PostgreSQL database: a session lives on either, a revoke on one is seen by
/// the other, both cleaners can run at once, and concurrent writes through both lose nothing.
/// </summary>
public sealed class TwoNodeTests : TempFolderTest
{
    private PostgresServer _server = null!;
    private string _connectionString = null!;
    private FakeTimeProvider _time = null!;

    [SetUp]
    public async Task SetUp()
    {
        _time = StoreFactory.NewTime();
        _server = await PostgresServer.SharedAsync();
        _connectionString = await _server.CreateDatabaseAsync();
    }

    [TearDown]
    public async Task TearDown()
    {
        await _server.DropDatabaseAsync(_connectionString);
    }

    /// <summary>Node A first (it makes the key ring in the shared folder, as the first server of a deployment does), then node B.</summary>
    private async Task<(SessionTestHost A, SessionTestHost B)> StartNodesAsync(Action<ServerSideSessionOptions>? configure = null)
    {
        var keys = Path.Combine(Folder.Path, "shared-keys");
        var a = await SessionTestHost.StartAsync(Path.Combine(Folder.Path, "a"), configure, services: s => s.UsePostgreSql(_connectionString), time: _time, keysFolder: keys);
        var b = await SessionTestHost.StartAsync(Path.Combine(Folder.Path, "b"), configure, services: s => s.UsePostgreSql(_connectionString), time: _time, keysFolder: keys);
        return (a, b);
    }

    [Test]
    public async Task SignInOnA_IsSeenOnB_AndARevokeOnB_MakesAsNextRequestAnonymous()
    {
        var keys = Path.Combine(Folder.Path, "shared-keys");
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
        await using var a = await AuthTestApp.StartAsync(Path.Combine(Folder.Path, "a"), time, services: s => s.UsePostgreSql(_connectionString), keysFolder: keys);
        await using var b = await AuthTestApp.StartAsync(Path.Combine(Folder.Path, "b"), time, services: s => s.UsePostgreSql(_connectionString), keysFolder: keys);
        var cookies = new CookieContainer();   // one browser; cookies are per host, not per port, so both nodes get them
        var onA = a.CreateBrowser(cookies);
        var onB = b.CreateBrowser(cookies);

        await onA.GetTextAsync("/signin?user=erin");
        var onBBefore = await onB.GetTextAsync("/whoami");
        var ended = await b.Services.GetRequiredService<ISessionManager>().RevokeAllForUserAsync("erin");
        using var onAAfter = await onA.GetAsync("/admin-only");

        Assert.Multiple(async () =>
        {
            Assert.That(onBBefore, Is.EqualTo("erin"), "node B reads the sign-in node A stored");
            Assert.That(ended, Is.EqualTo(1));
            Assert.That(onAAfter.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
            Assert.That(await onA.GetTextAsync("/whoami"), Is.EqualTo("anonymous"));
        });
    }

    [Test]
    public async Task SessionCreatedOnA_IsReadAndChangedOnB_AndARevokeOnB_IsSeenByA()
    {
        var (a, b) = await StartNodesAsync();
        await using var nodeA = a;
        await using var nodeB = b;
        var onA = a.CreateRawClient();
        var onB = b.CreateRawClient();

        using var created = await onA.GetAsync("/set?key=user&value=alice");
        var cookieValue = created.SetCookieValue(a.CookieName)!;
        var cookie = $"{a.CookieName}={cookieValue}";
        var readOnB = await onB.GetTextAsync("/get?key=user", cookie);
        using var changedOnB = await onB.SendWithCookieAsync("/set?key=cart&value=3", cookie);
        var keysOnA = await onA.GetTextAsync("/keys", cookie);
        var id = await onA.GetTextAsync("/id", cookie);
        var idOnB = await onB.GetTextAsync("/id", cookie);

        var revoked = await b.Services.GetRequiredService<ISessionManager>().RevokeAsync(id);
        var readOnAAfterRevoke = await onA.GetTextAsync("/get?key=user", cookie);
        using var writeOnAAfterRevoke = await onA.SendWithCookieAsync("/set?key=x&value=1", cookie);
        var newCookie = $"{a.CookieName}={writeOnAAfterRevoke.SetCookieValue(a.CookieName)}";
        var newIdOnB = await onB.GetTextAsync("/id", newCookie);

        var secret = a.Services.GetRequiredService<SessionIdProtector>().Unprotect(cookieValue, out _)!;
        var storedIds = await PostgresServer.ScalarAsync<string>(_connectionString, "SELECT string_agg(encode(id, 'hex'), ',') FROM sessions");

        Assert.Multiple(() =>
        {
            Assert.That(readOnB, Is.EqualTo("alice"), "B reads the session A created");
            Assert.That(changedOnB.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(changedOnB.SetCookieValue(b.CookieName), Is.Null, "same session on B: no new cookie");
            Assert.That(keysOnA, Is.EqualTo("cart,user"), "A sees B's change");
            Assert.That(idOnB, Is.EqualTo(id));
            Assert.That(revoked, Is.True);
            Assert.That(readOnAAfterRevoke, Is.EqualTo("(none)"), "A's next request sees B's revoke");
            Assert.That(newIdOnB, Is.Not.EqualTo(id), "a write after the revoke gets a new ID, never the revoked one");
            Assert.That(storedIds, Is.EqualTo(newIdOnB), "one row, stored under the new session's hash");
            Assert.That(Convert.ToHexStringLower([.. secret.AsSpan(0, 6), .. SHA256.HashData(secret).AsSpan(0, 26)]), Is.EqualTo(id),
                "the revoked session was stored under its secret ID's issue time and SHA-256, never the secret");
        });
    }

    [Test]
    public async Task ConcurrentWritesOfDifferentKeys_ThroughBothNodes_LoseNothing()
    {
        const int writes = 200;
        var (a, b) = await StartNodesAsync();
        await using var nodeA = a;
        await using var nodeB = b;
        var onA = a.CreateRawClient();
        var onB = b.CreateRawClient();
        using var created = await onA.GetAsync("/set?key=seed&value=0");
        var cookie = $"{a.CookieName}={created.SetCookieValue(a.CookieName)}";

        var errors = 0;
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var parallel = new SemaphoreSlim(16);
        await Task.WhenAll(Enumerable.Range(0, writes).Select(async i =>
        {
            await parallel.WaitAsync();
            try
            {
                using var response = await (i % 2 == 0 ? onA : onB).SendWithCookieAsync($"/set?key=k{i}&value={i}", cookie);
                if (response.StatusCode != HttpStatusCode.OK || response.SetCookieValue(a.CookieName) is not null)
                {
                    Interlocked.Increment(ref errors);
                    failures.Enqueue($"k{i} through {(i % 2 == 0 ? "A" : "B")}: {(int)response.StatusCode}, new cookie: {response.SetCookieValue(a.CookieName) is not null}");
                }
            }
            finally
            {
                parallel.Release();
            }
        }));

        var keys = (await onB.GetTextAsync("/keys", cookie)).Split(',').ToHashSet();
        var lost = Enumerable.Range(0, writes).Count(i => !keys.Contains($"k{i}"));
        var conflicts = a.Logs.GetSnapshot().Count(r => r.Id.Name == "CommitConflict") + b.Logs.GetSnapshot().Count(r => r.Id.Name == "CommitConflict");
        var version = await PostgresServer.ScalarAsync<long>(_connectionString, "SELECT version FROM sessions");
        TestContext.Out.WriteLine($"two-node writes: {writes} (half through each node, 16 at a time, one session), lost: {lost}, errors: {errors}, version conflicts merged: {conflicts}, final row version: {version}");
        if (errors > 0)
        {
            // Why a write failed (it failed once in CI, 1 of 200, and not in six runs after): the answers and the nodes' warnings.
            var warnings = a.Logs.GetSnapshot().Concat(b.Logs.GetSnapshot()).Where(r => r.Level >= Microsoft.Extensions.Logging.LogLevel.Warning)
                .Select(r => $"{r.Id.Name}: {r.Message} {r.Exception?.Message}");
            TestContext.Out.WriteLine(string.Join('\n', failures.Concat(warnings)));
        }

        Assert.Multiple(() =>
        {
            Assert.That(errors, Is.Zero);
            Assert.That(lost, Is.Zero);
            Assert.That(keys, Has.Count.EqualTo(writes + 1));
            Assert.That(version, Is.EqualTo(writes + 1), "one version per write, none overwritten");
        });
    }

    [Test]
    public async Task BothCleanersAtOnce_On100000ExpiredRows_DeleteEveryOneOnce_WithoutErrors()
    {
        const int expired = 100_000;
        var (a, b) = await StartNodesAsync(o => o.IdleTimeout = TimeSpan.FromMinutes(20));
        await using var nodeA = a;
        await using var nodeB = b;
        var browser = a.CreateBrowser();
        await browser.GetTextAsync("/set?key=live&value=1");
        var longAgo = _time.GetUtcNow().AddHours(-1).ToUnixTimeSeconds();
        await PostgresServer.ScalarAsync<long>(
            _connectionString,
            "WITH inserted AS (INSERT INTO sessions (id, user_id, data, created_at, last_access, version, expires_at) " +
            "SELECT sha256(int8send(g)), 'user' || (g % 1000), '\\x01'::bytea, @t, @t, 1, @t FROM generate_series(1, @n) g RETURNING 1) SELECT COUNT(*) FROM inserted",
            ("t", longAgo),
            ("n", expired));
        var cleanerA = a.Services.GetServices<IHostedService>().OfType<SessionCleanupService>().Single();
        var cleanerB = b.Services.GetServices<IHostedService>().OfType<SessionCleanupService>().Single();

        var started = System.Diagnostics.Stopwatch.StartNew();
        var counts = await Task.WhenAll(
            Task.Run(() => cleanerA.RunOnceAsync(CancellationToken.None)),
            Task.Run(() => cleanerB.RunOnceAsync(CancellationToken.None)));
        started.Stop();
        var failures = a.Logs.GetSnapshot().Concat(b.Logs.GetSnapshot()).Count(r => r.Id.Name == "CleanupFailed");
        var left = await PostgresServer.ScalarAsync<long>(_connectionString, "SELECT COUNT(*) FROM sessions");
        TestContext.Out.WriteLine(
            $"two-node cleanup: {expired} expired rows; node A deleted {counts[0]}, node B deleted {counts[1]} (total {counts.Sum()}) " +
            $"in {started.Elapsed.TotalSeconds:0.0} s, concurrently, batches of 1000; errors: {failures}; rows left: {left} (the one live session)");

        Assert.Multiple(async () =>
        {
            Assert.That(failures, Is.Zero, "no deadlock, no error");
            Assert.That(counts.Sum(), Is.EqualTo(expired), "every expired row deleted exactly once");
            Assert.That(left, Is.EqualTo(1), "the live session is kept");
            Assert.That(await browser.GetTextAsync("/get?key=live"), Is.EqualTo("1"));
        });
    }
}
