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

    /// <summary>A store over the test database whose writer has a named, non-multiplexed connection of its own.</summary>
    private async Task<IServerSideSessionStore> CreateStoreAsync(FakeLogger<PostgreSqlSessionStore>? logger = null, TimeSpan? drainTimeout = null)
    {
        var dataSource = PostgreSqlSessionDataSource.Create(_connectionString);
        var writer = PostgreSqlSessionDataSource.Create(new NpgsqlConnectionStringBuilder(_connectionString) { Multiplexing = false, ApplicationName = WriterName }.ConnectionString);
        _disposables.Add(dataSource);
        _disposables.Add(writer);
        var store = new PostgreSqlSessionStore(dataSource, Options.Create(new ServerSideSessionOptions { ConnectionString = _connectionString }), _time, logger ?? new FakeLogger<PostgreSqlSessionStore>(), writer);
        _disposables.Add(store);
        await store.MigrateAsync();
        return store;
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
