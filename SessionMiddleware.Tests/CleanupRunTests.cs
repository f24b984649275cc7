using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Cleanup;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// The cleaner's runs (<see cref="SessionCleanupService"/>) over each store on a real database: a SQLite file and a
/// PostgreSQL server. The stores' own behaviour is in <see cref="StoreSpecificationTests"/>.
/// </summary>
[TestFixture(StoreBackend.Sqlite)]
[TestFixture(StoreBackend.Postgres)]
[TestFixture(StoreBackend.PostgresPartitioned)]
public sealed class CleanupRunTests(string kind)
{
    private StoreBackend _db = null!;
    private FakeTimeProvider _time = null!;

    [SetUp]
    public async Task SetUp()
    {
        _time = StoreFactory.NewTime();
        _db = await StoreBackend.CreateAsync(kind);
    }

    [TearDown]
    public async Task TearDown() => await _db.DisposeAsync();

    private static NewSession Row(byte[] key) => new(key, [1], null, null, null);

    [Test]
    public async Task CleanerRun_DeletesExactlyTheExpiredRows_InBatches_AndLogsTheCount()
    {
        var options = new ServerSideSessionOptions
        {
            IdleTimeout = TimeSpan.FromMinutes(20),
            AbsoluteTimeout = TimeSpan.FromHours(2),
            CleanupBatchSize = 10,
        };
        var store = new FaultyStore(_db.CreateStore(_time, o =>
        {
            o.IdleTimeout = options.IdleTimeout;
            o.AbsoluteTimeout = options.AbsoluteTimeout;
        }));
        await store.MigrateAsync();

        var tooOld = await CreateManyAsync(store, 7);     // created first, kept active: only the absolute timeout ends them
        _time.Advance(TimeSpan.FromMinutes(90));
        var idle = await CreateManyAsync(store, 23);      // will be idle 30 minutes
        _time.Advance(TimeSpan.FromMinutes(15));
        var live = await CreateManyAsync(store, 4);       // will be idle 15 minutes
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

            Assert.That(await _db.CountRowsAsync(), Is.EqualTo(4));
            var log = logger.Collector.LatestRecord;
            Assert.That(log.Id.Name, Is.EqualTo("CleanupCompleted"));
            Assert.That(log.Message, Does.Contain("deleted 30 expired sessions in 4 batches"));
        });
        Assert.That(idle, Has.Count.EqualTo(23));
    }

    [Test]
    public async Task CleanerRun_AfterAStoreFailure_LogsIt_AndTheNextRunDeletes()
    {
        var options = new ServerSideSessionOptions { IdleTimeout = TimeSpan.FromMinutes(20) };
        var store = new FaultyStore(_db.CreateStore(_time, o => o.IdleTimeout = options.IdleTimeout));
        await store.MigrateAsync();
        await CreateManyAsync(store, 3);
        _time.Advance(TimeSpan.FromMinutes(21));
        var logger = new FakeLogger<SessionCleanupService>();
        var cleaner = new SessionCleanupService(store, _time, Options.Create(options), logger);
        var error = _db.DatabaseError();

        store.OnDeleteExpired = () => error;
        var failed = await cleaner.RunOnceAsync(CancellationToken.None);
        var failureLog = logger.Collector.LatestRecord;
        store.OnDeleteExpired = null;
        var recovered = await cleaner.RunOnceAsync(CancellationToken.None);

        Assert.Multiple(async () =>
        {
            Assert.That(failed, Is.Zero);
            Assert.That(failureLog.Level, Is.EqualTo(LogLevel.Error));
            Assert.That(failureLog.Id.Name, Is.EqualTo("CleanupFailed"));
            Assert.That(failureLog.Exception, Is.SameAs(error));
            Assert.That(recovered, Is.EqualTo(3));
            Assert.That(await _db.CountRowsAsync(), Is.Zero);
        });
    }

    private static async Task<List<byte[]>> CreateManyAsync(IServerSideSessionStore store, int count)
    {
        var keys = new List<byte[]>();
        for (var i = 0; i < count; i++)
        {
            var key = StoreFactory.NewKey();
            keys.Add(key);
            await store.CreateAsync(Row(key));
        }

        return keys;
    }
}
