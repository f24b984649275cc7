using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Cleanup;
using SessionMiddleware.Events;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// The cleaner's runs (<see cref="SessionCleanupService"/>) over each store on a real database: a SQLite file and a
/// PostgreSQL server, with the ends it raises (<see cref="ServerSideSessionEvents.OnEnded"/>). The stores' own behaviour is
/// in <see cref="StoreSpecificationTests"/>.
/// </summary>
[LaneFixture(StoreBackend.Sqlite)]
[LaneFixture(StoreBackend.Postgres)]
[LaneFixture(StoreBackend.PostgresPartitioned)]
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

    private static NewSession Row(byte[] key, string? user = null) => new(key, [1], user, null, null);

    private SessionCleanupService Cleaner(FaultyStore store, ServerSideSessionOptions options, FakeLogger<SessionCleanupService> logger, FakeLogger<SessionEvents>? eventsLogger = null) =>
        new(store, _time, Options.Create(options), logger,
            events: new SessionEvents(options.Events, options.AbsoluteTimeout, _time, eventsLogger ?? new FakeLogger<SessionEvents>()));

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

        var tooOld = await CreateManyAsync(store, 7, "old");  // created first, kept active: only the absolute timeout ends them
        for (var i = 0; i < 6; i++)
        {
            await AdvanceAndTouchAsync(TimeSpan.FromMinutes(15));
        }

        var idle = await CreateManyAsync(store, 23, "idle");  // will be idle 31 minutes
        await AdvanceAndTouchAsync(TimeSpan.FromMinutes(15));
        var live = await CreateManyAsync(store, 4);           // will be idle 16 minutes
        await AdvanceAndTouchAsync(TimeSpan.FromMinutes(15)); // active, but 120 minutes old: expiring at their cap
        _time.Advance(TimeSpan.FromMinutes(1));
        var logger = new FakeLogger<SessionCleanupService>();
        var ended = new List<SessionEndedContext>();
        options.Events.OnEnded = c =>
        {
            ended.Add(c);
            return Task.CompletedTask;
        };
        var cleaner = Cleaner(store, options, logger);

        var deleted = await cleaner.RunOnceAsync(CancellationToken.None);
        var log = logger.Collector.LatestRecord;
        var again = await cleaner.RunOnceAsync(CancellationToken.None);

        Assert.Multiple(async () =>
        {
            Assert.That(deleted, Is.EqualTo(30));
            Assert.That(again, Is.Zero);
            Assert.That(store.DeleteExpiredCalls, Is.EqualTo(3), "batches of 10: 10, 10, 10");
            Assert.That(ended.Select(e => e.SessionId), Is.EquivalentTo(tooOld.Concat(idle).Select(Convert.ToHexStringLower)), "once per expired session");
            Assert.That(ended.Where(e => e.Reason == SessionEndReason.AbsoluteTimeout).Select(e => e.SessionId), Is.EquivalentTo(tooOld.Select(Convert.ToHexStringLower)));
            Assert.That(ended.Where(e => e.Reason == SessionEndReason.AbsoluteTimeout).Select(e => e.UserId), Is.All.EqualTo("old"));
            Assert.That(ended.Where(e => e.Reason == SessionEndReason.IdleTimeout).Select(e => e.UserId), Is.EqualTo(Enumerable.Repeat("idle", 23)));
            Assert.That(ended.Select(e => e.HttpContext), Is.All.Null, "outside any request");
            Assert.That(ended.Select(e => e.Time), Is.All.EqualTo(_time.GetUtcNow()));
            foreach (var key in live)
            {
                Assert.That(await store.LoadAsync(key), Is.Not.Null);
            }

            Assert.That(await _db.CountRowsAsync(), Is.EqualTo(4));
            Assert.That(log.Id.Name, Is.EqualTo("CleanupCompleted"));
            Assert.That(log.Message, Does.Contain("deleted 30 expired sessions in 3 batches"));
        });
        Assert.That(idle, Has.Count.EqualTo(23));

        async Task AdvanceAndTouchAsync(TimeSpan by)
        {
            _time.Advance(by);
            foreach (var key in tooOld)
            {
                Assert.That(await store.TouchAsync(key), Is.True);
            }
        }
    }

    /// <summary>
    /// At least once: a run that fails between raising a batch's ends and deleting it (a crash there) leaves the rows,
    /// so the next run raises them again, then deletes them; a third run raises nothing.
    /// </summary>
    [Test]
    public async Task CleanerRun_FailingBetweenTheEventsAndTheDelete_RaisesThemAgainNextRun_ThenDeletes()
    {
        var options = new ServerSideSessionOptions { IdleTimeout = TimeSpan.FromMinutes(20) };
        var store = new FaultyStore(_db.CreateStore(_time, o => o.IdleTimeout = options.IdleTimeout));
        await store.MigrateAsync();
        var keys = await CreateManyAsync(store, 3, "ann");
        _time.Advance(TimeSpan.FromMinutes(21));
        var logger = new FakeLogger<SessionCleanupService>();
        var ended = new List<string>();
        options.Events.OnEnded = c =>
        {
            ended.Add(c.SessionId);
            return Task.CompletedTask;
        };
        var cleaner = Cleaner(store, options, logger);
        var error = _db.DatabaseError();

        store.OnDeleteExpired = () => error;
        var failed = await cleaner.RunOnceAsync(CancellationToken.None);
        var failureLog = logger.Collector.LatestRecord;
        var raisedByFailedRun = ended.ToList();
        var rowsAfterFailedRun = await _db.CountRowsAsync();
        store.OnDeleteExpired = null;
        var recovered = await cleaner.RunOnceAsync(CancellationToken.None);
        var third = await cleaner.RunOnceAsync(CancellationToken.None);

        var ids = keys.Select(Convert.ToHexStringLower).ToList();
        Assert.Multiple(async () =>
        {
            Assert.That(failed, Is.Zero);
            Assert.That(failureLog.Level, Is.EqualTo(LogLevel.Error));
            Assert.That(failureLog.Id.Name, Is.EqualTo("CleanupFailed"));
            Assert.That(failureLog.Exception, Is.SameAs(error));
            Assert.That(raisedByFailedRun, Is.EquivalentTo(ids), "raised before the delete that failed");
            Assert.That(rowsAfterFailedRun, Is.EqualTo(3), "nothing deleted");
            Assert.That(recovered, Is.EqualTo(3));
            Assert.That(third, Is.Zero);
            Assert.That(ended, Is.EquivalentTo(ids.Concat(ids)), "each raised again by the next run, then never more");
            Assert.That(await _db.CountRowsAsync(), Is.Zero);
        });
    }

    /// <summary>A handler that throws is logged (Warning) and the run still deletes every expired row, raising every end.</summary>
    [Test]
    public async Task CleanerRun_WithAThrowingHandler_LogsWarnings_AndStillDeletesEveryExpiredRow()
    {
        var options = new ServerSideSessionOptions { IdleTimeout = TimeSpan.FromMinutes(20), CleanupBatchSize = 2 };
        var store = new FaultyStore(_db.CreateStore(_time, o => o.IdleTimeout = options.IdleTimeout));
        await store.MigrateAsync();
        await CreateManyAsync(store, 5);
        _time.Advance(TimeSpan.FromMinutes(21));
        var calls = 0;
        options.Events.OnEnded = c =>
        {
            // Every other handler throws at once, the others fail their task.
            return ++calls % 2 == 0 ? throw new InvalidOperationException("handler bug") : Task.FromException(new HttpRequestException("audit service down"));
        };
        var logger = new FakeLogger<SessionCleanupService>();
        var eventsLogger = new FakeLogger<SessionEvents>();

        var deleted = await Cleaner(store, options, logger, eventsLogger).RunOnceAsync(CancellationToken.None);

        var warnings = eventsLogger.Collector.GetSnapshot();
        Assert.Multiple(async () =>
        {
            Assert.That(deleted, Is.EqualTo(5));
            Assert.That(calls, Is.EqualTo(5));
            Assert.That(await _db.CountRowsAsync(), Is.Zero);
            Assert.That(logger.Collector.LatestRecord.Id.Name, Is.EqualTo("CleanupCompleted"));
            Assert.That(warnings.Select(w => (w.Level, w.Id.Id, w.Id.Name)), Is.EqualTo(Enumerable.Repeat((LogLevel.Warning, 70, "SessionEventHandlerFailed"), 5)));
            Assert.That(warnings.Select(w => w.Exception?.GetType()), Does.Contain(typeof(InvalidOperationException)).And.Contain(typeof(HttpRequestException)));
        });
    }

    private static async Task<List<byte[]>> CreateManyAsync(IServerSideSessionStore store, int count, string? user = null)
    {
        var keys = new List<byte[]>();
        for (var i = 0; i < count; i++)
        {
            var key = StoreFactory.NewKey();
            keys.Add(key);
            await store.CreateAsync(Row(key, user));
        }

        return keys;
    }
}
