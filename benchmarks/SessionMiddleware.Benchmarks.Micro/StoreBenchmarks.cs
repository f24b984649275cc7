using BenchmarkDotNet.Attributes;
using Dapper;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using SessionMiddleware.Ids;
using SessionMiddleware.Storage;
using SessionMiddleware.Storage.Sqlite;

namespace SessionMiddleware.Benchmarks.Micro;

/// <summary>
/// The SQLite store, one call at a time (no concurrency), on a file in a temp folder with 10,000 sessions:
/// load, commit (optimistic update), create, touch, a cleanup run's listing. The Raw* benchmarks take the store apart — opening a pooled
/// connection, the per-open PRAGMAs, the Dapper query — to show where a load's time goes.
/// </summary>
[MemoryDiagnoser]
public class StoreBenchmarks
{
    private static readonly byte[] Data = [1, 1, 1, (byte)'k', 27, .. "value-of-k-0123456789abcdef"u8];
    private string _folder = "";
    private string _connectionString = "";
    private SqliteSessionStore _store = null!;
    private SqliteSessionStore _uncached = null!;
    private SqliteSessionStore _dayLater = null!;
    private byte[] _key = [];
    private long _version;
    private SqliteConnection _held = null!;
    private SqliteCommand _prepared = null!;
    private string _loadSql = "";

    [GlobalSetup]
    public void Setup()
    {
        _folder = Directory.CreateTempSubdirectory("smbench-micro-").FullName;
        var options = new ServerSideSessionOptions { ConnectionString = $"Data Source={Path.Combine(_folder, "sessions.db")}" };
        _store = new SqliteSessionStore(Options.Create(options), TimeProvider.System, NullLogger<SqliteSessionStore>.Instance);
        _store.MigrateAsync().GetAwaiter().GetResult();
        for (var i = 0; i < 10_000; i++)
        {
            _store.CreateAsync(new NewSession(SessionIds.ComputeKey(SessionIds.NewSecretId(DateTimeOffset.UtcNow)), Data, null, "127.0.0.1", "bench")).GetAwaiter().GetResult();
        }

        _key = SessionIds.ComputeKey(SessionIds.NewSecretId(DateTimeOffset.UtcNow));
        _version = _store.CreateAsync(new NewSession(_key, Data, null, "127.0.0.1", "bench")).GetAwaiter().GetResult().Version;
        _uncached = new SqliteSessionStore(
            Options.Create(new ServerSideSessionOptions { ConnectionString = options.ConnectionString, RowCacheSize = 0 }), TimeProvider.System, NullLogger<SqliteSessionStore>.Instance);
        _dayLater = new SqliteSessionStore(Options.Create(options), new DayLaterTimeProvider(), NullLogger<SqliteSessionStore>.Instance);
        _connectionString = new SqliteConnectionStringBuilder(options.ConnectionString) { Pooling = true }.ToString();
        _loadSql = new SessionSql(SqliteDialect.Instance, options.TableName).Load;

        _held = new SqliteConnection(_connectionString);
        _held.Open();
        _prepared = _held.CreateCommand();
        _prepared.CommandText = _loadSql;
        _prepared.Parameters.Add("@Id", SqliteType.Blob).Value = _key;
        _prepared.Prepare();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _prepared.Dispose();
        _held.Dispose();
        _uncached.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _dayLater.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _store.DisposeAsync().AsTask().GetAwaiter().GetResult();
        SqliteConnection.ClearAllPools();
        Directory.Delete(_folder, recursive: true);
    }

    /// <summary><see cref="SqliteSessionStore.LoadAsync"/> of an existing session nobody changed (the row cache answers).</summary>
    [Benchmark]
    public Task<StoredSession?> StoreLoad() => _store.LoadAsync(_key);

    /// <summary><see cref="SqliteSessionStore.LoadAsync"/> with <see cref="ServerSideSessionOptions.RowCacheSize"/> 0: the table is read.</summary>
    [Benchmark]
    public Task<StoredSession?> StoreLoadWithoutRowCache() => _uncached.LoadAsync(_key);

    /// <summary><see cref="SqliteSessionStore.UpdateAsync"/> with the expected version (the commit of a write).</summary>
    [Benchmark]
    public async Task<long> StoreCommit()
    {
        var result = await _store.UpdateAsync(_key, Data, _version);
        _version = result.Version;
        return _version;
    }

    /// <summary><see cref="SqliteSessionStore.CreateAsync"/> of a new session (the commit of /new).</summary>
    [Benchmark]
    public Task<StoredSession> StoreCreate() => _store.CreateAsync(new NewSession(SessionIds.ComputeKey(SessionIds.NewSecretId(DateTimeOffset.UtcNow)), Data, null, "127.0.0.1", "bench"));

    /// <summary><see cref="SqliteSessionStore.TouchAsync"/> (a read-only request once TouchInterval has passed).</summary>
    [Benchmark]
    public Task<bool> StoreTouch() => _store.TouchAsync(_key);

    /// <summary>
    /// <see cref="SqliteSessionStore.ListExpiredAsync"/> of a cleanup run's batch (100 rows, by expiry), a day later, when
    /// every session is expired; nothing is deleted, so each call lists the same rows.
    /// </summary>
    [Benchmark(OperationsPerInvoke = ExpiredBatch)]
    public Task<IReadOnlyList<SessionLifetime>> StoreListExpiredPerRow() => _dayLater.ListExpiredAsync(FromTheStart, ExpiredBatch);

    private const int ExpiredBatch = 100;

    // A cursor before every row: the listing by expiry (a cursor with no key would start a run, with its counts).
    private static readonly SessionLifetime FromTheStart = new([0], null, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch);

    /// <summary>Open a pooled connection and close it.</summary>
    [Benchmark]
    public async Task RawOpen()
    {
        await using var c = new SqliteConnection(_connectionString);
        await c.OpenAsync();
    }

    /// <summary>Open, then the PRAGMAs the store runs on every open (through Dapper).</summary>
    [Benchmark]
    public async Task RawOpenPragmas()
    {
        await using var c = new SqliteConnection(_connectionString);
        await c.OpenAsync();
        await c.ExecuteAsync("PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL;");
    }

    /// <summary>Open, then the store's load query through Dapper, without the PRAGMAs.</summary>
    [Benchmark]
    public async Task<object?> RawOpenDapperLoad()
    {
        await using var c = new SqliteConnection(_connectionString);
        await c.OpenAsync();
        return await c.QuerySingleOrDefaultAsync(_loadSql, new { Id = _key });
    }

    /// <summary>The load query as a prepared command on a connection held open (plain ADO.NET, no Dapper).</summary>
    [Benchmark]
    public object? RawPreparedLoad()
    {
        using var reader = _prepared.ExecuteReader();
        return reader.Read() ? reader.GetValue(0) : null;
    }

    private sealed class DayLaterTimeProvider : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => base.GetUtcNow().AddDays(1);
    }
}
