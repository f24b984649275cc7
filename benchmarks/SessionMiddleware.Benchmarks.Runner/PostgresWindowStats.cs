using System.Globalization;
using Npgsql;

namespace SessionMiddleware.Benchmarks.Runner;

/// <summary>
/// What the PostgreSQL server did during one measured window, from its statistics views: checkpoints, WAL, and the
/// session table's updates (how many were HOT), dead rows and vacuums. Logged beside each window's figures, so that a
/// slow or jittery window can be told apart from a checkpoint or an autovacuum landing inside it.
/// </summary>
internal sealed record PostgresWindowStats(
    long Checkpoints,
    long WalRecords,
    long WalFullPageImages,
    long WalBytes,
    long Updates,
    long HotUpdates,
    long DeadRows,
    long Vacuums)
{
    private const string Query =
        """
        SELECT (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter),
               (SELECT wal_records FROM pg_stat_wal), (SELECT wal_fpi FROM pg_stat_wal), (SELECT wal_bytes::bigint FROM pg_stat_wal),
               COALESCE(t.n_tup_upd, 0), COALESCE(t.n_tup_hot_upd, 0), COALESCE(t.n_dead_tup, 0),
               COALESCE(t.autovacuum_count + t.vacuum_count, 0)
        FROM (SELECT 1) one LEFT JOIN pg_stat_user_tables t ON t.relname = 'sessions';
        """;

    /// <summary>The counters now (a fresh snapshot: <c>pg_stat_clear_snapshot</c>), or null when they cannot be read.</summary>
    public static async Task<PostgresWindowStats?> TakeAsync(string connectionString)
    {
        try
        {
            await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString);
            await connection.OpenAsync();
            // The table's counters reach the views when a backend reports them (at most once a second).
            await using var command = new NpgsqlCommand("SELECT pg_stat_force_next_flush(); SELECT pg_stat_clear_snapshot(); " + Query, connection);
            await using var reader = await command.ExecuteReaderAsync();
            await reader.NextResultAsync();
            await reader.NextResultAsync();
            if (!await reader.ReadAsync())
            {
                return null;
            }

            return new PostgresWindowStats(
                reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3),
                reader.GetInt64(4), reader.GetInt64(5), reader.GetInt64(6), reader.GetInt64(7));
        }
        catch (NpgsqlException)
        {
            return null;
        }
    }

    /// <summary>The window's counts (dead rows: at its end).</summary>
    public static string Describe(PostgresWindowStats before, PostgresWindowStats after, long requests)
    {
        var updates = after.Updates - before.Updates;
        var hot = updates == 0 ? 0 : 100.0 * (after.HotUpdates - before.HotUpdates) / updates;
        var walPerRequest = requests == 0 ? 0 : (double)(after.WalBytes - before.WalBytes) / requests;
        return string.Create(CultureInfo.InvariantCulture,
            $"checkpoints {after.Checkpoints - before.Checkpoints}, vacuums {after.Vacuums - before.Vacuums}, updates {updates} ({hot:0}% HOT), dead rows {after.DeadRows}, WAL {walPerRequest:0} B/req, full-page images {after.WalFullPageImages - before.WalFullPageImages}");
    }
}
