using System.Diagnostics;
using System.Text;
using Microsoft.Data.Sqlite;

namespace SessionMiddleware.Benchmarks.Runner;

/// <summary>
/// Writes many session rows straight into the library's table, in creation order (the schema its migration created: see
/// Shared/Storage/SessionSql.cs), with one INSERT … SELECT in one transaction.
/// </summary>
internal static class SqliteFiller
{
    /// <summary>A row's data in the library's format 1: one entry "k" = the value the benchmark server writes.</summary>
    private static readonly byte[] Data = MakeData("k", "value-of-k-0123456789abcdef");

    /// <summary>The benchmark server's idle timeout: a filled row expires this long after its last access.</summary>
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromMinutes(20);

    /// <summary>
    /// How fast the filled rows were created: the newest at the given last access, each earlier one 1/RowsPerSecond
    /// before it (about what <c>/new</c> creates per second here), so that rows share an expiry second as sessions
    /// created at full speed do, not all one second.
    /// </summary>
    public const int RowsPerSecond = 10_000;

    public static async Task<TimeSpan> InsertAsync(string databasePath, int count, DateTimeOffset lastAccess, string table = "sessions")
    {
        var sw = Stopwatch.StartNew();
        var builder = new SqliteConnectionStringBuilder { DataSource = databasePath, Pooling = false, Mode = SqliteOpenMode.ReadWrite };
        await using var connection = new SqliteConnection(builder.ToString());
        await connection.OpenAsync();
        // Set-up, not measured: a big page cache for the random-key inserts and no syncs on this connection.
        await Exec(connection, null, "PRAGMA busy_timeout = 30000; PRAGMA cache_size = -524288; PRAGMA synchronous = OFF;");
        await using (var transaction = (SqliteTransaction)await connection.BeginTransactionAsync())
        {
            // Keys as the library issues them (Ids/SessionIds.cs): the creation time in milliseconds (6 bytes, big-endian),
            // then 26 bytes of SHA-256 (random here), built as hex and decoded once (|| on blobs would make TEXT);
            // timestamps in Unix seconds, as the library stores them.
            await Exec(connection, transaction,
                $"""
                WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < @count)
                INSERT INTO "{table}" (id, user_id, data, created_at, last_access, version, ip, user_agent, expires_at)
                SELECT unhex(printf('%012x', @at * 1000 - (@count - x) * 1000 / @rate) || hex(randomblob(26))), NULL, @data, @at - (@count - x) / @rate, @at - (@count - x) / @rate, 1, '127.0.0.1', 'SessionMiddleware.Benchmarks filler',
                       @expires - (@count - x) / @rate FROM n;
                """,
                ("@count", count), ("@data", Data), ("@at", lastAccess.ToUnixTimeSeconds()), ("@expires", lastAccess.Add(IdleTimeout).ToUnixTimeSeconds()),
                ("@rate", RowsPerSecond));
            await transaction.CommitAsync();
        }

        // The library's keys are BLOBs; a key of another type would never match the cleaner's deletes.
        if (await CountAsync(databasePath, "typeof(id) <> 'blob'", table) is var notBlobs and > 0)
        {
            throw new InvalidOperationException($"the filler wrote {notBlobs} keys that are not BLOBs");
        }

        await Exec(connection, null, "PRAGMA wal_checkpoint(TRUNCATE);");
        return sw.Elapsed;
    }

    public static async Task<long> CountAsync(string databasePath, string where = "1 = 1", string table = "sessions")
    {
        var builder = new SqliteConnectionStringBuilder { DataSource = databasePath, Pooling = false, Mode = SqliteOpenMode.ReadOnly };
        await using var connection = new SqliteConnection(builder.ToString());
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT count(*) FROM \"{table}\" WHERE {where};";
        return (long)(await command.ExecuteScalarAsync())!;
    }

    public static long FileBytes(string databasePath) =>
        new[] { "", "-wal" }.Select(s => new FileInfo(databasePath + s)).Where(f => f.Exists).Sum(f => f.Length);

    private static async Task Exec(SqliteConnection connection, SqliteTransaction? transaction, string sql, params (string Name, object Value)[] parameters)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        command.CommandTimeout = 600;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        await command.ExecuteNonQueryAsync();
    }

    private static byte[] MakeData(string key, string value)
    {
        var k = Encoding.UTF8.GetBytes(key);
        var v = Encoding.UTF8.GetBytes(value);
        return [1, 1, (byte)k.Length, .. k, (byte)v.Length, .. v];
    }
}
