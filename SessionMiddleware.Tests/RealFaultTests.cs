using System.Diagnostics;
using System.Net;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Hosting;
using Npgsql;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// Real store faults, not injected ones: a corrupt database file, a lock held past the timeout, a full disk,
/// a dropped table. Each gets a clear status and log line, and the next request after the fault ends succeeds.
/// </summary>
[LaneFixture]
public sealed class RealFaultTests : TempFolderTest
{
    [Test]
    public async Task CorruptDatabaseFile_Answers503_AndRecoversWhenTheFileIsRestored()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");
        Checkpoint(host.DatabasePath);
        var original = await File.ReadAllBytesAsync(host.DatabasePath);

        var corrupt = (byte[])original.Clone();
        new Random(7).NextBytes(corrupt.AsSpan(0, 100));
        await File.WriteAllBytesAsync(host.DatabasePath, corrupt);
        await host.ReleaseConnectionsAsync();
        using var failed = await browser.GetAsync("/get?key=a");
        await File.WriteAllBytesAsync(host.DatabasePath, original);
        await host.ReleaseConnectionsAsync();

        Assert.Multiple(async () =>
        {
            Assert.That(failed.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
            var log = host.Logs.GetSnapshot().Single(r => r.Id.Name == "LoadFailed");
            Assert.That(log.Exception, Is.InstanceOf<SqliteException>());
            TestContext.Out.WriteLine($"corrupt file: {(int)failed.StatusCode}, {log.Exception!.Message}");
            Assert.That(await browser.GetTextAsync("/get?key=a"), Is.EqualTo("1"));
        });
    }

    [Test]
    public async Task ExclusiveLockHeldBeyondTheBusyTimeout_LoadAnswers503_AndRecoversWhenReleased()
    {
        // The write tries again until its IOTimeout (1 s here rather than the default 10 s, to keep the test short).
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o =>
        {
            o.BusyTimeout = TimeSpan.FromMilliseconds(300);
            o.IOTimeout = TimeSpan.FromSeconds(1);
        });
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");

        await host.ReleaseConnectionsAsync();
        var stopwatch = Stopwatch.StartNew();
        HttpResponseMessage failed;
        using (var locker = new SqliteConnection($"Data Source={host.DatabasePath};Pooling=False;Default Timeout=5"))
        {
            locker.Open();
            Execute(locker, "PRAGMA locking_mode = EXCLUSIVE;");
            Execute(locker, "BEGIN EXCLUSIVE;");
            Execute(locker, "UPDATE sessions SET version = version;");
            failed = await browser.GetAsync("/get?key=a");
            Execute(locker, "COMMIT;");
        }

        stopwatch.Stop();
        using (failed)
        {
            Assert.Multiple(async () =>
            {
                Assert.That(failed.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
                var log = host.Logs.GetSnapshot().Single(r => r.Id.Name == "LoadFailed");
                TestContext.Out.WriteLine($"exclusive lock held: load answered {(int)failed.StatusCode} after {stopwatch.ElapsedMilliseconds} ms ({log.Exception!.Message})");
                Assert.That(await browser.GetTextAsync("/get?key=a"), Is.EqualTo("1"));
            });
        }
    }

    [Test]
    public async Task WriteLockHeldBeyondTheBusyTimeout_WriteAnswers500_ReadsKeepWorking_AndRecovers()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o => o.BusyTimeout = TimeSpan.FromMilliseconds(300));
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");

        HttpResponseMessage write;
        string read;
        using (var locker = new SqliteConnection($"Data Source={host.DatabasePath};Pooling=False"))
        {
            locker.Open();
            Execute(locker, "BEGIN IMMEDIATE;");
            Execute(locker, "UPDATE sessions SET version = version;");
            write = await browser.GetAsync("/set?key=a&value=2");
            read = await browser.GetTextAsync("/get?key=a");
            Execute(locker, "ROLLBACK;");
        }

        using (write)
        {
            Assert.Multiple(async () =>
            {
                Assert.That((int)write.StatusCode, Is.EqualTo(500));
                var log = host.Logs.GetSnapshot().First(r => r.Id.Name == "CommitFailed");
                TestContext.Out.WriteLine($"write lock held: write answered {(int)write.StatusCode} ({log.Exception!.Message}); read answered 200");
                Assert.That(read, Is.EqualTo("1"), "readers are not blocked by a writer in WAL mode");
                Assert.That(await browser.GetTextAsync("/set?key=a&value=3"), Is.EqualTo("ok"));
                Assert.That(await browser.GetTextAsync("/get?key=a"), Is.EqualTo("3"));
            });
        }
    }

    [Test]
    public async Task WriteLockHeldLongerThanIOTimeout_WritesAnswer500WithinIOTimeout_NotBusyTimeout_ThenRecover()
    {
        // The busy handler would wait 10 s for the lock; IOTimeout says a request's store call takes 0.5 s at most.
        var ioTimeout = TimeSpan.FromMilliseconds(500);
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o =>
        {
            o.IOTimeout = ioTimeout;
            o.BusyTimeout = TimeSpan.FromSeconds(10);
        });
        var browsers = Enumerable.Range(0, 40).Select(_ => host.CreateBrowser()).ToList();
        foreach (var (browser, i) in browsers.Select((b, i) => (b, i)))
        {
            Assert.That(await browser.GetTextAsync($"/set?key=a&value={i}"), Is.EqualTo("ok"));
        }

        var fresh = host.CreateRawClient();
        var answers = new List<(int Status, TimeSpan Took)>();
        using (var locker = new SqliteConnection($"Data Source={host.DatabasePath};Pooling=False"))
        {
            locker.Open();
            Execute(locker, "BEGIN IMMEDIATE;");
            Execute(locker, "UPDATE sessions SET version = version;");

            // Updates of existing sessions and creations of new ones, all at once, while the write lock is held.
            var requests = browsers.Select(b => (b, "/set?key=a&value=locked"))
                .Concat(Enumerable.Range(0, 10).Select(_ => (fresh, "/set?key=n&value=1")))
                .Select(async r =>
                {
                    var stopwatch = Stopwatch.StartNew();
                    using var response = await r.Item1.GetAsync(r.Item2);
                    return ((int)response.StatusCode, stopwatch.Elapsed);
                });
            answers.AddRange(await Task.WhenAll(requests));
            Execute(locker, "ROLLBACK;");
        }

        var slowest = answers.Max(a => a.Took);
        TestContext.Out.WriteLine(
            $"write lock held, IOTimeout {ioTimeout.TotalMilliseconds} ms, BusyTimeout 10 s: {answers.Count} writes answered " +
            $"{string.Join(", ", answers.GroupBy(a => a.Status).Select(g => $"{g.Count()} × {g.Key}"))}, slowest after {slowest.TotalMilliseconds:0} ms");
        Assert.Multiple(async () =>
        {
            Assert.That(answers.Select(a => a.Status), Is.All.EqualTo(500), "a commit that could not run answers 500 (CommitFailed)");
            Assert.That(slowest, Is.LessThan(ioTimeout + TimeSpan.FromSeconds(3)), "every write answered within IOTimeout (+ a margin for a loaded machine), not after BusyTimeout");

            // Released: writes go through again, and what was acknowledged before is still there.
            foreach (var (browser, i) in browsers.Select((b, i) => (b, i)))
            {
                Assert.That(await browser.GetTextAsync("/get?key=a"), Is.EqualTo(i.ToString(System.Globalization.CultureInfo.InvariantCulture)), "the acknowledged value, not the failed write's");
                Assert.That(await browser.GetTextAsync($"/set?key=b&value={i}"), Is.EqualTo("ok"));
                Assert.That(await browser.GetTextAsync("/get?key=b"), Is.EqualTo(i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            }
        });
    }

    [Test]
    public async Task WriteLockHeldLongerThanBusyTimeout_ButShorterThanIOTimeout_TheWritesWaitAndSucceed()
    {
        // Another process's writer can hold SQLite's lock past BusyTimeout (its busy handler is not fair between
        // processes); the write is tried again for as long as its caller's IOTimeout allows, not answered "database is locked".
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o =>
        {
            o.IOTimeout = TimeSpan.FromSeconds(30);
            o.BusyTimeout = TimeSpan.FromMilliseconds(100);
        });
        var browsers = Enumerable.Range(0, 8).Select(_ => host.CreateBrowser()).ToList();
        foreach (var browser in browsers)
        {
            Assert.That(await browser.GetTextAsync("/set?key=a&value=before"), Is.EqualTo("ok"));
        }

        List<int> statuses;
        using (var locker = new SqliteConnection($"Data Source={host.DatabasePath};Pooling=False"))
        {
            locker.Open();
            Execute(locker, "BEGIN IMMEDIATE;");
            Execute(locker, "UPDATE sessions SET version = version;");
            var requests = browsers.Select(async b =>
            {
                using var response = await b.GetAsync("/set?key=a&value=after");
                return (int)response.StatusCode;
            }).ToList();

            // Held past BusyTimeout and past Microsoft.Data.Sqlite's own retries (its command timeout, BusyTimeout rounded
            // up to 1 s): fault injection, another process's long transaction, in real time.
            await Task.Delay(TimeSpan.FromSeconds(2.5));
            Assert.That(requests.TrueForAll(r => !r.IsCompleted), "the writes wait for the lock");
            Execute(locker, "ROLLBACK;");
            statuses = [.. await Task.WhenAll(requests)];
        }

        Assert.Multiple(async () =>
        {
            Assert.That(statuses, Is.All.EqualTo(200));
            foreach (var browser in browsers)
            {
                Assert.That(await browser.GetTextAsync("/get?key=a"), Is.EqualTo("after"));
            }

            Assert.That(host.Logs.GetSnapshot().Any(r => r.Id.Name == "WriteLockBusy"), "the retry is logged");
        });
    }

    [Test]
    public async Task DroppedTable_Answers503_NamingTheTableAndTheMigrationCall()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");
        using (var db = host.OpenDatabase())
        {
            Execute(db, "DROP TABLE sessions;");
        }

        using var failed = await browser.GetAsync("/get?key=a");
        await host.App.MigrateServerSideSessionsAsync();

        Assert.Multiple(async () =>
        {
            Assert.That(failed.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
            var log = host.Logs.GetSnapshot().Single(r => r.Id.Name == "LoadFailed");
            Assert.That(log.Exception!.Message, Does.Contain("\"sessions\"").And.Contain("MigrateServerSideSessionsAsync"));
            Assert.That(await browser.GetTextAsync("/set?key=b&value=2"), Is.EqualTo("ok"), "after migrating again, requests work (the old session is gone)");
            Assert.That(await browser.GetTextAsync("/get?key=b"), Is.EqualTo("2"));
        });
    }

    [Test]
    public async Task DiskFull_WritesGet500_ReadsKeepWorking_AndWritesRecoverWhenSpaceReturns()
    {
        using var disk = TinyDisk.Mount(Folder.File("disk"), "2m");
        await using var host = await SessionTestHost.StartAsync(disk.Path, o => o.TouchInterval = TimeSpan.Zero);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");

        disk.FillLeaving(bytes: 16 * 1024);
        using var write = await browser.GetAsync("/setsize?key=big&size=100000");
        using var read = await browser.GetAsync("/get?key=a");
        var readText = await read.Content.ReadAsStringAsync();
        disk.FreeFiller();
        var retried = await browser.GetTextAsync("/setsize?key=big&size=100000");

        Assert.Multiple(async () =>
        {
            Assert.That((int)write.StatusCode, Is.EqualTo(500), "the lost write is not reported as a success");
            var log = host.Logs.GetSnapshot().First(r => r.Id.Name == "CommitFailed");
            TestContext.Out.WriteLine($"disk full: write {(int)write.StatusCode} ({log.Exception!.Message}); read {(int)read.StatusCode}");
            Assert.That(read.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(readText, Is.EqualTo("1"));
            Assert.That(retried, Is.EqualTo("ok"));
            Assert.That(await browser.GetTextAsync("/size?key=big"), Is.EqualTo("100000"));
        });
    }

    private static void Checkpoint(string databasePath)
    {
        using var connection = new SqliteConnection($"Data Source={databasePath};Pooling=False");
        connection.Open();
        Execute(connection, "PRAGMA wal_checkpoint(TRUNCATE);");
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}

/// <summary>
/// PostgreSQL going away under load, for real: the app's database stops taking connections and every open one is cut
/// (what a server restart or failover looks like to the app). Loads answer 503, and the next request after the
/// database is back succeeds.
/// </summary>
[LaneFixture, InLane(TestLane.PostgreSql)]
public sealed class PostgreSqlOutageTests : TempFolderTest
{
    [Test]
    public async Task DatabaseGoneMidLoad_Answers503_AndTheNextRequestAfterItIsBackSucceeds()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, store: StoreKind.PostgreSql);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");
        var database = new NpgsqlConnectionStringBuilder(host.PostgresConnectionString).Database;
        var admin = (await PostgresServer.SharedAsync()).ConnectionString("postgres");

        await PostgresServer.ScalarAsync<int>(admin, $"ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS false; SELECT 1");
        await PostgresServer.ScalarAsync<int>(admin, $"SELECT count(pg_terminate_backend(pid))::int FROM pg_stat_activity WHERE datname = '{database}'");
        var statuses = new List<HttpStatusCode>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                using var during = await browser.GetAsync("/get?key=a");
                statuses.Add(during.StatusCode);
            }
        }
        finally
        {
            await PostgresServer.ScalarAsync<int>(admin, $"ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS true; SELECT 1");
        }

        using var after = await browser.GetAsync("/get?key=a");
        Assert.Multiple(async () =>
        {
            Assert.That(statuses, Is.All.EqualTo(HttpStatusCode.ServiceUnavailable));
            var log = host.Logs.GetSnapshot().First(r => r.Id.Name == "LoadFailed");
            TestContext.Out.WriteLine($"database gone: loads answered {string.Join(", ", statuses.Select(s => (int)s))} ({log.Exception!.GetType().Name}: {log.Exception.Message}); after: {(int)after.StatusCode}");
            Assert.That(log.Exception, Is.InstanceOf<Npgsql.NpgsqlException>());
            Assert.That(after.StatusCode, Is.EqualTo(HttpStatusCode.OK), "the first request after the database is back");
            Assert.That(await after.Content.ReadAsStringAsync(), Is.EqualTo("1"));
        });
    }
}
