using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Storage.Sqlite;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>The background cleaner deletes exactly the expired rows, in batches, and survives store failures.</summary>
public sealed class CleanupTests
{
    private TempFolder _folder = null!;
    private FakeTimeProvider _time = null!;
    private string _db = null!;

    [SetUp]
    public void SetUp()
    {
        _folder = new TempFolder();
        _time = StoreFactory.NewTime();
        _db = _folder.File("c.db");
    }

    [TearDown]
    public void TearDown() => _folder.Dispose();

    [Test]
    public async Task RunOnce_DeletesExactlyTheExpiredRows_InBatches_AndLogsTheCount()
    {
        var options = new ServerSideSessionOptions
        {
            ConnectionString = $"Data Source={_db}",
            IdleTimeout = TimeSpan.FromMinutes(20),
            AbsoluteTimeout = TimeSpan.FromHours(2),
            CleanupBatchSize = 10,
        };
        var store = new FaultyStore(new SqliteSessionStore(Options.Create(options), _time, new FakeLogger<SqliteSessionStore>()));
        await store.MigrateAsync();

        var tooOld = await CreateMany(store, 7);          // created first, kept active: only the absolute timeout ends them
        _time.Advance(TimeSpan.FromMinutes(90));
        var idle = await CreateMany(store, 23);           // will be idle 30 minutes
        _time.Advance(TimeSpan.FromMinutes(15));
        var live = await CreateMany(store, 4);            // will be idle 15 minutes
        _time.Advance(TimeSpan.FromMinutes(15));
        foreach (var key in tooOld)
        {
            await store.TouchAsync(key);                  // active, but 120 minutes old
        }

        _time.Advance(TimeSpan.FromMinutes(1));
        var logger = new FakeLogger<SessionCleanupService>();
        var cleaner = new SessionCleanupService(store, _time, Options.Create(options), logger);

        var deleted = await cleaner.RunOnceAsync(CancellationToken.None);

        Assert.Multiple(async () =>
        {
            Assert.That(deleted, Is.EqualTo(30));
            Assert.That(store.DeleteExpiredCalls, Is.EqualTo(4), "batches of 10: 10, 10, 10, 0");
            foreach (var key in live)
            {
                Assert.That(await store.LoadAsync(key), Is.Not.Null);
            }

            Assert.That(CountRows(), Is.EqualTo(4));
            var log = logger.Collector.LatestRecord;
            Assert.That(log.Id.Name, Is.EqualTo("CleanupCompleted"));
            Assert.That(log.Message, Does.Contain("deleted 30 expired sessions in 4 batches"));
        });
        Assert.That(idle, Has.Count.EqualTo(23));
    }

    [Test]
    public async Task RunOnce_AfterAStoreFailure_LogsIt_AndTheNextRunDeletes()
    {
        var options = new ServerSideSessionOptions { ConnectionString = $"Data Source={_db}", IdleTimeout = TimeSpan.FromMinutes(20) };
        var store = new FaultyStore(new SqliteSessionStore(Options.Create(options), _time, new FakeLogger<SqliteSessionStore>()));
        await store.MigrateAsync();
        await CreateMany(store, 3);
        _time.Advance(TimeSpan.FromMinutes(21));
        var logger = new FakeLogger<SessionCleanupService>();
        var cleaner = new SessionCleanupService(store, _time, Options.Create(options), logger);

        store.OnDeleteExpired = () => new SqliteException("disk I/O error", 10);
        var failed = await cleaner.RunOnceAsync(CancellationToken.None);
        var failureLog = logger.Collector.LatestRecord;
        store.OnDeleteExpired = null;
        var recovered = await cleaner.RunOnceAsync(CancellationToken.None);

        Assert.Multiple(() =>
        {
            Assert.That(failed, Is.Zero);
            Assert.That(failureLog.Level, Is.EqualTo(LogLevel.Error));
            Assert.That(failureLog.Id.Name, Is.EqualTo("CleanupFailed"));
            Assert.That(failureLog.Exception, Is.InstanceOf<SqliteException>());
            Assert.That(recovered, Is.EqualTo(3));
            Assert.That(CountRows(), Is.Zero);
        });
    }

    [Test]
    public async Task HostedCleaner_RunsEveryCleanupInterval_OnTheInjectedClock()
    {
        await using var host = await SessionTestHost.StartAsync(_folder.Path, o =>
        {
            o.IdleTimeout = TimeSpan.FromMinutes(20);
            o.CleanupInterval = TimeSpan.FromMinutes(5);
        }, time: _time);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");
        var cleaner = host.Services.GetServices<IHostedService>().OfType<SessionCleanupService>().Single();
        var runs = new System.Collections.Concurrent.BlockingCollection<int>();
        cleaner.RunCompleted += runs.Add;
        await cleaner.TimerStarted.WaitAsync(TimeSpan.FromSeconds(30));

        _time.Advance(TimeSpan.FromMinutes(5));          // first tick: nothing expired yet
        Assert.That(runs.TryTake(out var first, TimeSpan.FromSeconds(30)), Is.True, "the cleaner ran at the first interval");
        _time.Advance(TimeSpan.FromMinutes(20));         // the session is now 25 minutes idle; ticks at 10..25 minutes
        var deletedTotal = 0;
        while (deletedTotal == 0 && runs.TryTake(out var n, TimeSpan.FromSeconds(30)))
        {
            deletedTotal += n;
        }

        Assert.Multiple(() =>
        {
            Assert.That(first, Is.Zero);
            Assert.That(deletedTotal, Is.EqualTo(1));
            Assert.That(host.CountRows(), Is.Zero);
        });
    }

    private async Task<List<byte[]>> CreateMany(ISessionStore store, int count)
    {
        var keys = new List<byte[]>();
        for (var i = 0; i < count; i++)
        {
            var key = StoreFactory.NewKey();
            keys.Add(key);
            await store.CreateAsync(new NewSession(key, [1], null, null, null));
        }

        return keys;
    }

    private long CountRows()
    {
        using var connection = new SqliteConnection($"Data Source={_db};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM sessions";
        return (long)command.ExecuteScalar()!;
    }
}
