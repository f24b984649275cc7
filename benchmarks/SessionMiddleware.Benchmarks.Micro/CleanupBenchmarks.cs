using BenchmarkDotNet.Attributes;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using SessionMiddleware.Ids;
using SessionMiddleware.Storage.Sqlite;

namespace SessionMiddleware.Benchmarks.Micro;

/// <summary>
/// A cleanup run's deletes on the SQLite store: <see cref="SqliteSessionStore.DeleteExpiredAsync"/> of 10,000 expired
/// sessions in batches of 100 (the default <c>CleanupBatchSize</c>), one call at a time; reported per row. Each
/// iteration first creates the 10,000 sessions and expires them (not timed).
/// </summary>
[MemoryDiagnoser]
public class CleanupBenchmarks
{
    private const int Rows = 10_000;
    private const int Batch = 100;
    private static readonly byte[] Data = [1, 1, 1, (byte)'k', 27, .. "value-of-k-0123456789abcdef"u8];
    private string _folder = "";
    private string _connectionString = "";
    private SqliteSessionStore _store = null!;
    private readonly List<byte[]> _keys = [];

    [GlobalSetup]
    public void Setup()
    {
        _folder = Directory.CreateTempSubdirectory("smbench-cleanup-").FullName;
        _connectionString = $"Data Source={Path.Combine(_folder, "sessions.db")}";
        _store = new SqliteSessionStore(Options.Create(new ServerSideSessionOptions { ConnectionString = _connectionString }), TimeProvider.System, NullLogger<SqliteSessionStore>.Instance);
        _store.MigrateAsync().GetAwaiter().GetResult();
    }

    [IterationSetup]
    public void CreateExpiredRows()
    {
        _keys.Clear();
        var creates = new List<Task>(Rows);
        for (var i = 0; i < Rows; i++)
        {
            var key = SessionIds.ComputeKey(SessionIds.NewSecretId(DateTimeOffset.UtcNow));
            _keys.Add(key);
            creates.Add(_store.CreateAsync(new NewSession(key, Data, null, "127.0.0.1", "bench")));
        }

        Task.WhenAll(creates).GetAwaiter().GetResult();
        using var connection = new SqliteConnection(_connectionString);
        connection.Open();
        using var expire = connection.CreateCommand();
        expire.CommandText = "UPDATE sessions SET expires_at = 1;";
        expire.ExecuteNonQuery();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _store.DisposeAsync().AsTask().GetAwaiter().GetResult();
        SqliteConnection.ClearAllPools();
        Directory.Delete(_folder, recursive: true);
    }

    /// <summary>Deletes the 10,000 expired rows, 100 keys per call.</summary>
    [Benchmark(OperationsPerInvoke = Rows)]
    public async Task<int> StoreDeleteExpiredPerRow()
    {
        var deleted = 0;
        for (var i = 0; i < Rows; i += Batch)
        {
            deleted += (await _store.DeleteExpiredAsync(_keys.GetRange(i, Batch))).Count;
        }

        return deleted == Rows ? deleted : throw new InvalidOperationException($"Deleted {deleted} of {Rows} rows.");
    }
}
