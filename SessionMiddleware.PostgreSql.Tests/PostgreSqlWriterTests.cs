using System.Security.Cryptography;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using SessionMiddleware.PostgreSql;
using SessionMiddleware.Storage;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// The PostgreSQL store's group-commit writer against a real server's failures: its connection ended by the server, a
/// row locked by another transaction, the store stopped while a write waits, two nodes writing the same rows.
/// The writer has a connection of its own, without multiplexing (as <c>UsePostgreSql(connectionString)</c> gives it),
/// named so that the test can find its backend.
/// </summary>
public sealed class PostgreSqlWriterTests
{
    private const string WriterName = "sm-test-writer";
    private const int Sessions = 40;

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
    private readonly List<IAsyncDisposable> _disposables = [];
    private PostgresServer _server = null!;
    private string _connectionString = null!;

    [SetUp]
    public async Task SetUp()
    {
        _server = await PostgresServer.SharedAsync();
        _connectionString = await _server.CreateDatabaseAsync();
    }

    [TearDown]
    public async Task TearDown()
    {
        foreach (var disposable in Enumerable.Reverse(_disposables))
        {
            await disposable.DisposeAsync();
        }

        await _server.DropDatabaseAsync(_connectionString);
    }

    [Test]
    public async Task TheServerEndsTheWritersConnection_TheNextSingleWritesSucceed()
    {
        var store = await CreateStoreAsync();
        var key = NewKey();
        await store.CreateAsync(new NewSession(key, [0], null, null, null));

        for (var version = 1; version <= 3; version++)
        {
            await TerminateWriterAsync();
            // Each write alone in its batch: the first meets the ended connection, runs again on a new one.
            var first = await store.UpdateAsync(key, [(byte)version], expectedVersion: version);
            Assert.That(first, Is.EqualTo(new SessionUpdateResult(SessionUpdateStatus.Committed, version + 1)), $"round {version}: the write that met the ended connection");
            Assert.That(await store.TouchAsync(key), Is.True, $"round {version}: the next write");
        }

        Assert.That((await store.LoadAsync(key))!.Data, Is.EqualTo(new byte[] { 3 }));
    }

    [Test]
    public async Task TheServerEndsTheWritersConnection_AGroupedBatchSucceeds_AndSoDoesTheNext()
    {
        var store = await CreateStoreAsync();
        var keys = Enumerable.Range(0, Sessions).Select(_ => NewKey()).ToList();
        await Task.WhenAll(keys.Select(k => store.CreateAsync(new NewSession(k, [0], null, null, null))));

        var version = 1L;
        for (var round = 0; round < 3; round++)
        {
            await TerminateWriterAsync();
            // All issued at once: grouped updates, creations and touches share the batches that meet the ended connection.
            var updates = keys.Select(k => store.UpdateAsync(k, [(byte)round], expectedVersion: version)).ToList();
            var creates = Enumerable.Range(0, 10).Select(_ => store.CreateAsync(new NewSession(NewKey(), [1], null, null, null))).ToList();
            var touches = keys.Take(10).Select(k => store.TouchAsync(k)).ToList();

            Assert.That((await Task.WhenAll(updates)).Select(r => r.Status), Is.All.EqualTo(SessionUpdateStatus.Committed), $"round {round}");
            await Task.WhenAll(creates);
            Assert.That(await Task.WhenAll(touches), Is.All.True, $"round {round}");
            version++;
            Assert.That((await Task.WhenAll(keys.Select(k => store.UpdateAsync(k, [9], expectedVersion: version)))).Select(r => r.Status),
                Is.All.EqualTo(SessionUpdateStatus.Committed), $"round {round}: the next batch");
            version++;
        }
    }

    [Test]
    public async Task ARowLockedByAnotherTransaction_DelaysOnlyItsOwnWrites_TheOthersCompleteWhileItIsHeld()
    {
        var store = await CreateStoreAsync();
        var locked = NewKey();
        var others = Enumerable.Range(0, Sessions).Select(_ => NewKey()).ToList();
        await Task.WhenAll(others.Append(locked).Select(k => store.CreateAsync(new NewSession(k, [0], null, null, null))));
        var locker = await LockRowAsync(locked);
        var heldUpdate = store.UpdateAsync(locked, [1], expectedVersion: 1);
        var heldTouches = new List<Task<bool>>();
        for (var round = 0; round < 3; round++)
        {
            // A write of the locked row issued with the others: grouped updates, touches and new sessions.
            heldTouches.Add(store.TouchAsync(locked));
            var updates = others.Select(k => store.UpdateAsync(k, [(byte)round], expectedVersion: round + 1)).ToList();
            var touches = others.Take(5).Select(k => store.TouchAsync(k)).ToList();
            var creates = Enumerable.Range(0, 5).Select(_ => store.CreateAsync(new NewSession(NewKey(), [1], null, null, null))).ToList();

            // Bounded only so that a writer stalled behind the lock fails the test instead of hanging it.
            await Task.WhenAll(Task.WhenAll(updates), Task.WhenAll(touches), Task.WhenAll(creates)).WaitAsync(TimeSpan.FromSeconds(60));
            Assert.That(updates.Select(u => u.Result.Status), Is.All.EqualTo(SessionUpdateStatus.Committed), $"round {round}");
            Assert.That(touches.Select(t => t.Result), Is.All.True, $"round {round}");
            Assert.That(heldTouches.Append<Task>(heldUpdate).Any(t => t.IsCompleted), Is.False, $"round {round}: the locked row's writes wait while the others completed");
        }

        await locker.DisposeAsync();
        Assert.That(await heldUpdate.WaitAsync(TimeSpan.FromSeconds(60)), Is.EqualTo(new SessionUpdateResult(SessionUpdateStatus.Committed, 2)), "once the lock is released, the held writes run");
        Assert.That(await Task.WhenAll(heldTouches), Is.All.True);
        Assert.That((await store.LoadAsync(locked))!.Data, Is.EqualTo(new byte[] { 1 }));
    }

    [Test]
    public async Task TwoNodesWritingTheSameRowsInOppositeOrders_NeverWaitForEachOtherInACycle()
    {
        // Two stores on one database, as two app servers: each its own writer and connection.
        var loggers = new[] { new FakeLogger<PostgreSqlSessionStore>(), new FakeLogger<PostgreSqlSessionStore>() };
        var nodes = new[] { await CreateStoreAsync(loggers[0]), await CreateStoreAsync(loggers[1]) };
        var keys = Enumerable.Range(0, Sessions).Select(_ => NewKey()).ToList();
        await Task.WhenAll(keys.Select(k => nodes[0].CreateAsync(new NewSession(k, [0], null, null, null))));

        for (var round = 0; round < 100; round++)
        {
            // Each node updates half of the keys (one grouped statement) and touches the other half (a statement each),
            // the other node the other way round, each issuing them in the opposite order: without one lock order every
            // batch would hold rows the other's wants. Every key is updated by one node a round: all commit.
            var updates = new List<Task<SessionUpdateResult>>();
            var touches = new List<Task<bool>>();
            for (var node = 0; node < 2; node++)
            {
                var indexes = Enumerable.Range(0, keys.Count);
                foreach (var i in node == 0 ? indexes : indexes.Reverse())
                {
                    if ((i + node + round) % 2 == 0)
                    {
                        updates.Add(nodes[node].UpdateAsync(keys[i], [(byte)round], expectedVersion: round + 1));
                    }
                    else
                    {
                        touches.Add(nodes[node].TouchAsync(keys[i]));
                    }
                }
            }

            Assert.That((await Task.WhenAll(updates)).Select(r => r.Status), Is.All.EqualTo(SessionUpdateStatus.Committed), $"round {round}");
            Assert.That(await Task.WhenAll(touches), Is.All.True, $"round {round}");
        }

        var lockWaits = loggers.SelectMany(l => l.Collector.GetSnapshot())
            .Where(r => r.Message.Contains("SQLSTATE 40P01", StringComparison.Ordinal) || r.Message.Contains("SQLSTATE 55P03", StringComparison.Ordinal))
            .Select(r => r.Message).ToList();
        Assert.That(lockWaits, Is.Empty, "no batch of one node was held by the other's until a lock timeout or a deadlock");
        Assert.That(await PostgresServer.ScalarAsync<long>(_connectionString, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"), Is.Zero);
    }

    [Test]
    public async Task AGroupedUpdateWaitingForItsFirstRowInKeyOrder_HoldsNoneOfItsOtherRows()
    {
        var store = await CreateStoreAsync();
        // Stored in descending key order: a plan that reads the table in its stored order would lock the rows that way.
        var keys = Enumerable.Range(0, Sessions).Select(_ => NewKey()).OrderDescending(SessionKeyComparer.Instance).ToList();
        foreach (var key in keys)
        {
            await store.CreateAsync(new NewSession(key, [0], null, null, null));
        }

        var first = keys[^1];
        var others = keys.Take(Sessions - 1).ToArray();
        var locker = await LockRowAsync(first);
        await using var observer = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_connectionString) { Pooling = false }.ConnectionString);
        await observer.OpenAsync();

        // Issued at once (the held row in the middle), so they share a grouped update whose first row is the held one:
        // it waits there, holding no other row, as a batch that locked its rows in key order first would.
        var updates = others.Take(Sessions / 2).Append(first).Concat(others.Skip(Sessions / 2))
            .Select(k => store.UpdateAsync(k, [1], expectedVersion: 1)).ToList();
        var waiting = await GroupedUpdateWaitingAsync(observer, TimeSpan.FromSeconds(60));
        Assert.That(waiting, Is.Not.Null, "a grouped update waited for the held row");
        await using (var command = new NpgsqlCommand("SELECT count(*) FROM (SELECT 1 FROM sessions WHERE id = ANY(@Ids) FOR UPDATE SKIP LOCKED) AS f;", observer))
        {
            command.Parameters.AddWithValue("Ids", others);
            var free = (long)(await command.ExecuteScalarAsync())!;
            // Observed within the wait (the batch's lock timeout ends it): the same transaction still waits.
            Assert.That(await GroupedUpdateWaitingAsync(observer, TimeSpan.Zero), Is.EqualTo(waiting), "observed while the grouped update waited");
            Assert.That(free, Is.EqualTo(Sessions - 1), "the waiting batch held none of the rows after the held one");
        }

        await locker.DisposeAsync();
        Assert.That((await Task.WhenAll(updates)).Select(u => u.Status), Is.All.EqualTo(SessionUpdateStatus.Committed));
    }

    [Test]
    public async Task TheTableLockedByAnotherTransaction_WritesWaitAlone_UpToABound_PastItTheyFailAtOnce_ThenAllRun()
    {
        var store = await CreateStoreAsync();
        var keys = Enumerable.Range(0, PostgreSqlWriteQueue.MaxLockWaitsQueued + 100).Select(_ => NewKey()).ToList();
        await using var locker = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_connectionString) { Pooling = false }.ConnectionString);
        await locker.OpenAsync();
        await using (var command = new NpgsqlCommand("BEGIN; LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE;", locker))
        {
            await command.ExecuteNonQueryAsync();
        }

        // Every write waits for the table: the writer sends each batch's writes to wait on their own, without running
        // them one by one into the lock; those past the bound fail while the lock is still held.
        var creates = keys.Select(k => store.CreateAsync(new NewSession(k, [1], null, null, null))).ToList();
        // Which writes are refused depends on the batches (each in key order): wait for the 100 answers, bounded only so
        // that a writer stalled behind the lock fails the test instead of hanging it.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (creates.Count(c => c.IsCompleted) < 100 && DateTime.UtcNow < deadline)
        {
            await ((Task)Task.WhenAny(creates.Where(c => !c.IsCompleted))).WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        var refused = creates.Where(c => c.IsCompleted).ToList();
        Assert.That(refused, Has.Count.EqualTo(100));
        foreach (var create in refused)
        {
            var error = Assert.ThrowsAsync<InvalidOperationException>(async () => await create);
            Assert.That(error!.Message, Does.Contain("wait for locked rows already"));
        }

        Assert.That(creates.Count(c => !c.IsCompleted), Is.EqualTo(PostgreSqlWriteQueue.MaxLockWaitsQueued), "the others wait while the table is locked");
        await using (var command = new NpgsqlCommand("ROLLBACK;", locker))
        {
            await command.ExecuteNonQueryAsync();
        }

        var waited = creates.Except(refused).ToList();
        await Task.WhenAll(waited).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.That(await store.CountAsync(SessionFilter.All), Is.EqualTo(PostgreSqlWriteQueue.MaxLockWaitsQueued), "every write that waited is stored once the lock is released");
    }

    [Test]
    public async Task AWriteHeldPastTheDrainTimeoutAtShutdown_FailsWithAClearError_AndTheWriterEndsCleanly()
    {
        var thrown = await StoppedStoreExceptions.DuringAsync(async logger =>
        {
            var held = await StopWhileAWriteIsHeldAsync(logger);
            var error = Assert.ThrowsAsync<InvalidOperationException>(async () => await held);
            Assert.That(error!.Message, Does.Contain("stopped before this write was stored"));
        });

        Assert.That(thrown.OfType<ObjectDisposedException>(), Is.Empty, "nothing used the writer's token source after it was disposed");
    }

    /// <summary>
    /// A store whose session row another transaction holds locked; a write to it waits; the store stops with a short
    /// drain timeout. Returns the held write. The store is not kept, so that its writer can be collected.
    /// </summary>
    private async Task<Task<SessionUpdateResult>> StopWhileAWriteIsHeldAsync(FakeLogger<PostgreSqlSessionStore> logger)
    {
        var (store, dataSources) = await NewStoreAsync(logger, TimeSpan.FromMilliseconds(300));
        try
        {
            var key = NewKey();
            await store.CreateAsync(new NewSession(key, [0], null, null, null));
            await using var locker = await LockRowAsync(key);
            var held = store.UpdateAsync(key, [1], expectedVersion: 1);
            await Task.Delay(200);
            Assert.That(held.IsCompleted, Is.False, "the write waits for the locked row");
            await ((IAsyncDisposable)store).DisposeAsync();
            return held;
        }
        finally
        {
            foreach (var dataSource in dataSources)
            {
                await dataSource.DisposeAsync();
            }
        }
    }

    /// <summary>A connection whose open transaction holds <paramref name="key"/>'s row (<c>SELECT … FOR UPDATE</c>); disposing it releases the row.</summary>
    private async Task<NpgsqlConnection> LockRowAsync(byte[] key)
    {
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_connectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("BEGIN; SELECT 1 FROM sessions WHERE id = @Id FOR UPDATE;", connection);
        command.Parameters.AddWithValue("Id", key);
        await command.ExecuteNonQueryAsync();
        return connection;
    }

    /// <summary>
    /// The transaction start of the writer's grouped update while it waits for a row lock (polled until
    /// <paramref name="within"/> has passed); null when it does not wait.
    /// </summary>
    private static async Task<DateTime?> GroupedUpdateWaitingAsync(NpgsqlConnection observer, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        await using var command = new NpgsqlCommand(
            "SELECT xact_start FROM pg_stat_activity WHERE application_name = @Name AND wait_event_type = 'Lock' AND query LIKE '%unnest%';", observer);
        command.Parameters.AddWithValue("Name", WriterName);
        while (true)
        {
            if (await command.ExecuteScalarAsync() is DateTime start)
            {
                return start;
            }

            if (DateTime.UtcNow >= deadline)
            {
                return null;
            }

            await Task.Delay(5);
        }
    }

    /// <summary>A store over the test database whose writer has a named, non-multiplexed connection of its own.</summary>
    private async Task<IServerSideSessionStore> CreateStoreAsync(FakeLogger<PostgreSqlSessionStore>? logger = null)
    {
        var (store, dataSources) = await NewStoreAsync(logger ?? new FakeLogger<PostgreSqlSessionStore>(), drainTimeout: null);
        _disposables.AddRange(dataSources);
        _disposables.Add((IAsyncDisposable)store);
        return store;
    }

    private async Task<(IServerSideSessionStore Store, NpgsqlDataSource[] DataSources)> NewStoreAsync(FakeLogger<PostgreSqlSessionStore> logger, TimeSpan? drainTimeout)
    {
        var dataSource = PostgreSqlSessionDataSource.Create(_connectionString);
        var writer = PostgreSqlSessionDataSource.Create(new NpgsqlConnectionStringBuilder(_connectionString) { Multiplexing = false, ApplicationName = WriterName }.ConnectionString);
        var options = Options.Create(new ServerSideSessionOptions { ConnectionString = _connectionString });
        var store = new PostgreSqlSessionStore(dataSource, options, _time, logger, writer, drainTimeout);
        await store.MigrateAsync();
        return (store, [dataSource, writer]);
    }

    /// <summary>Ends the writer's backend as a server restart or <c>pg_terminate_backend</c> by an operator would, and waits until it is gone.</summary>
    private async Task TerminateWriterAsync()
    {
        var ended = await PostgresServer.ScalarAsync<int>(
            _connectionString,
            "SELECT count(pg_terminate_backend(pid, 10000))::int FROM pg_stat_activity WHERE application_name = @Name AND datname = current_database()",
            ("Name", WriterName));
        Assert.That(ended, Is.EqualTo(1), "the writer's one connection was ended");
    }

    private static byte[] NewKey() => RandomNumberGenerator.GetBytes(32);
}
