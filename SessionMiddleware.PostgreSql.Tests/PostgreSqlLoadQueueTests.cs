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
/// The PostgreSQL store's group load against a server that does not answer: the session table locked by another
/// transaction (<c>LOCK TABLE … IN ACCESS EXCLUSIVE MODE</c>), which holds every load's statement at the server.
/// </summary>
public sealed class PostgreSqlLoadQueueTests
{
    private const string LoadsName = "sm-test-loads";

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
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

    [Test]
    public async Task ALoadHeldAtTheServerWhenTheStoreStops_FailsWithAClearError_AndTheLoadQueueEndsCleanly()
    {
        var thrown = await StoppedStoreExceptions.DuringAsync(async logger =>
        {
            var held = await StopWhileALoadIsHeldAsync(logger);
            var error = Assert.ThrowsAsync<InvalidOperationException>(async () => await held.WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.That(error!.Message, Does.Contain("stopped before this session was loaded"));
        });

        Assert.That(thrown.OfType<ObjectDisposedException>(), Is.Empty, "nothing used the load queue's token source after it was disposed");
    }

    /// <remarks>
    /// Without multiplexing: with it, Npgsql does not cancel a statement once sent (npgsql/npgsql#3761), and a group
    /// holds its slot until the server answers or the command timeout (docs/reliability.md).
    /// </remarks>
    [Test]
    public async Task LoadsWhoseCallersAllGaveUp_LeaveTheServer_EvenWithoutACommandTimeout()
    {
        var (store, dataSource) = await NewStoreAsync(new FakeLogger<PostgreSqlSessionStore>(), drainTimeout: null, "Command Timeout=0;Multiplexing=false");
        try
        {
            var key = NewKey();
            await store.CreateAsync(new NewSession(key, [3], null, null, null));
            await using var locker = await LockTableAsync();

            // Two loads, one after the other: each its own group at the server, every slot taken; each caller with its own
            // timeout (what IOTimeout gives a request's store call).
            var loads = new List<Task>();
            for (var i = 0; i < PostgreSqlLoadQueue.MaxInFlight; i++)
            {
                var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
                loads.Add(store.LoadAsync(key, cancel.Token).ContinueWith(t => { cancel.Dispose(); return t; }, TaskScheduler.Default).Unwrap());
                await Task.Delay(100);
            }

            Assert.That(await WaitingLoadsAsync(expected: PostgreSqlLoadQueue.MaxInFlight), Is.EqualTo(PostgreSqlLoadQueue.MaxInFlight), "both groups wait at the server for the lock");
            foreach (var load in loads)
            {
                Assert.That(async () => await load.WaitAsync(TimeSpan.FromSeconds(5)), Throws.InstanceOf<OperationCanceledException>());
            }

            // The lock is still held: a statement nobody waits for any more is cancelled, not left holding its slot (and a
            // connection) until the command timeout, here never.
            Assert.That(await WaitingLoadsAsync(expected: 0), Is.Zero, "no load statement waits at the server once its callers have gone");

            // The slots are free: the next load reaches the server at once instead of queueing behind the abandoned ones.
            var next = store.LoadAsync(key);
            Assert.That(await WaitingLoadsAsync(expected: 1), Is.EqualTo(1), "the next load is at the server");
            await using (var command = new NpgsqlCommand("ROLLBACK;", locker))
            {
                await command.ExecuteNonQueryAsync();
            }

            Assert.That((await next.WaitAsync(TimeSpan.FromSeconds(10)))!.Data, Is.EqualTo(new byte[] { 3 }));
        }
        finally
        {
            await ((IAsyncDisposable)store).DisposeAsync();
            await dataSource.DisposeAsync();
        }
    }

    /// <summary>
    /// A store whose table another transaction holds locked; a load waits at the server; the store stops with a short
    /// drain timeout. Returns the held load. The store is not kept, so that its load queue can be collected.
    /// </summary>
    private async Task<Task<StoredSession?>> StopWhileALoadIsHeldAsync(FakeLogger<PostgreSqlSessionStore> logger)
    {
        var (store, dataSource) = await NewStoreAsync(logger, TimeSpan.FromMilliseconds(300));
        try
        {
            var key = NewKey();
            await store.CreateAsync(new NewSession(key, [0], null, null, null));
            await using var locker = await LockTableAsync();
            var held = store.LoadAsync(key);
            Assert.That(await WaitingLoadsAsync(expected: 1), Is.EqualTo(1), "the load waits at the server for the lock");
            await ((IAsyncDisposable)store).DisposeAsync();
            return held;
        }
        finally
        {
            await dataSource.DisposeAsync();
        }
    }

    /// <summary>A connection whose open transaction holds the session table locked (every read of it waits); disposing it releases the table.</summary>
    private async Task<NpgsqlConnection> LockTableAsync()
    {
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_connectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("BEGIN; LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE;", connection);
        await command.ExecuteNonQueryAsync();
        return connection;
    }

    /// <summary>
    /// How many of the store's load statements wait at the server for a lock, once that number is
    /// <paramref name="expected"/> or after 5 s.
    /// </summary>
    private async Task<int> WaitingLoadsAsync(int expected)
    {
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (true)
        {
            var waiting = await PostgresServer.ScalarAsync<int>(
                _connectionString,
                "SELECT count(*)::int FROM pg_stat_activity WHERE application_name = @Name AND datname = current_database() AND state = 'active' AND wait_event_type = 'Lock' AND query LIKE 'SELECT data, version%'",
                ("Name", LoadsName));
            if (waiting == expected || DateTime.UtcNow > deadline)
            {
                return waiting;
            }

            await Task.Delay(50);
        }
    }

    /// <summary>A store over the test database whose loads run on a named data source (as <c>UsePostgreSql(connectionString)</c> builds it).</summary>
    private async Task<(IServerSideSessionStore Store, NpgsqlDataSource DataSource)> NewStoreAsync(FakeLogger<PostgreSqlSessionStore> logger, TimeSpan? drainTimeout, string? settings = null)
    {
        var connectionString = new NpgsqlConnectionStringBuilder(_connectionString + (settings is null ? string.Empty : ";" + settings)) { ApplicationName = LoadsName }.ConnectionString;
        var dataSource = PostgreSqlSessionDataSource.Create(connectionString);
        var options = Options.Create(new ServerSideSessionOptions { ConnectionString = connectionString });
        var store = new PostgreSqlSessionStore(dataSource, options, _time, logger, writerDataSource: null, drainTimeout);
        await store.MigrateAsync();
        return (store, dataSource);
    }

    private static byte[] NewKey() => RandomNumberGenerator.GetBytes(32);
}
