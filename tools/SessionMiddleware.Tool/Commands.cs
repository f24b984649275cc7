using System.Data.Common;
using System.Diagnostics;
using System.Text.Json;
using Dapper;
using SessionMiddleware.Storage;

namespace SessionMiddleware.Tool;

/// <summary>The commands. Each writes its result to stdout and returns the exit code; failures are exceptions.</summary>
internal static class Commands
{
    private const int ClearBatchSize = 1000;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static async Task<int> MigrateAsync(Target target, CancellationToken cancellationToken)
    {
        await using var db = SessionDatabase.Open(target, create: true);
        bool existed;
        long? before = null;
        await using (var connection = await db.OpenConnectionAsync(cancellationToken))
        {
            existed = await db.RequireSessionTableAsync(connection, "migrate", cancellationToken, mayBeMissing: true, acceptOlderSchema: true);
            if (existed)
            {
                before = await SchemaVersionAsync(db, connection, cancellationToken);
            }
        }

        // The app's own migration: same checks, same upgrade of an older table.
        await db.Store.MigrateAsync(cancellationToken);
        Console.WriteLine(
            !existed ? $"created table \"{target.TableName}\" in {db.Describe()} (schema version {SessionTableSchema.Version})"
            : before is { } old && old < SessionTableSchema.Version ? $"upgraded table \"{target.TableName}\" in {db.Describe()} from schema version {old} to {SessionTableSchema.Version} (every row kept)"
            : $"table \"{target.TableName}\" in {db.Describe()} is up to date (schema version {SessionTableSchema.Version})");
        return ExitCodes.Done;
    }

    public static async Task<int> StatusAsync(Target target, bool json, CancellationToken cancellationToken)
    {
        await using var db = SessionDatabase.Open(target, create: false);
        await using var connection = await db.OpenConnectionAsync(cancellationToken);
        await db.RequireSessionTableAsync(connection, "status", cancellationToken);
        var version = await SchemaVersionAsync(db, connection, cancellationToken);
        var stats = await db.StatisticsAsync(connection, cancellationToken);
        var (sizeLabel, size, walSize) = await SizeAsync(db, connection, cancellationToken);

        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(
                new
                {
                    provider = target.Provider,
                    database = db.Describe(),
                    table = target.TableName,
                    settings = target.SettingsSources,
                    idleTimeout = target.IdleTimeout,
                    absoluteTimeout = target.AbsoluteTimeout,
                    schemaVersion = version,
                    live = stats.Live,
                    expired = stats.Total - stats.Live,
                    userBound = stats.LiveBound,
                    rows = stats.Total,
                    oldest = stats.OldestCreatedAt is { } o ? DateTimeOffset.FromUnixTimeSeconds(o) : (DateTimeOffset?)null,
                    newest = stats.NewestCreatedAt is { } n ? DateTimeOffset.FromUnixTimeSeconds(n) : (DateTimeOffset?)null,
                    sizeBytes = size,
                    walSizeBytes = walSize,
                    lastCleanup = (DateTimeOffset?)null,
                },
                Json));
            return ExitCodes.Done;
        }

        Console.WriteLine($"provider        {target.Provider}");
        Console.WriteLine($"database        {db.Describe()}");
        if (target.SettingsSources.Count > 0)
        {
            Console.WriteLine($"settings        {string.Join(", ", target.SettingsSources)}");
        }

        Console.WriteLine($"table           {target.TableName} (schema version {version?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "not recorded"})");
        Console.WriteLine($"sessions        {stats.Live} live ({stats.LiveBound} bound to a user), {stats.Total - stats.Live} expired not yet deleted, {stats.Total} rows");
        Console.WriteLine($"oldest          {Format.Time(stats.OldestCreatedAt)}");
        Console.WriteLine($"newest          {Format.Time(stats.NewestCreatedAt)}");
        Console.WriteLine(walSize is { } wal
            ? $"{sizeLabel,-16}{Format.Size(size)} (WAL {Format.Size(wal)})"
            : $"{sizeLabel,-16}{Format.Size(size)}");
        Console.WriteLine("last cleanup    not recorded in the database (the app logs each cleanup run)");
        Console.WriteLine($"expiry          idle {target.IdleTimeout}, absolute {target.AbsoluteTimeout?.ToString() ?? "none"}");
        return ExitCodes.Done;
    }

    public static async Task<int> TrimAsync(Target target, bool dryRun, int batchSize, CancellationToken cancellationToken)
    {
        if (batchSize < 1)
        {
            throw new UsageException("--batch-size must be at least 1");
        }

        await using var db = SessionDatabase.Open(target, create: false);
        long expired;
        await using (var connection = await db.OpenConnectionAsync(cancellationToken))
        {
            await db.RequireSessionTableAsync(connection, "trim", cancellationToken);
            var stats = await db.StatisticsAsync(connection, cancellationToken);
            expired = stats.Total - stats.Live;
        }

        if (dryRun)
        {
            Console.WriteLine($"{Format.Count(expired, "expired session", "expired sessions")} would be deleted (dry run: nothing deleted)");
            return ExitCodes.Done;
        }

        // The store's own batches, as the app's cleaner runs them: each delete is one short transaction, so the app's
        // writes get in between. The tool has none of the app's event handlers: the sessions it deletes raise no OnEnded.
        var progress = new Progress(expired);
        long deleted = 0;
        var batches = 0;
        SessionLifetime? after = null;
        while (true)
        {
            var batch = await db.Store.ListExpiredAsync(after, batchSize, cancellationToken);
            if (batch.Count == 0)
            {
                break;
            }

            deleted += (await db.Store.DeleteExpiredAsync([.. batch.Select(r => r.Key)], cancellationToken)).Count;
            batches++;
            progress.Report(deleted);
            if (batch.Count < batchSize)
            {
                break;
            }

            after = batch[^1];
        }

        progress.Done();
        Console.WriteLine($"deleted {Format.Count(deleted, "expired session", "expired sessions")} in {Format.Count(batches, "batch", "batches")}");
        return ExitCodes.Done;
    }

    public static async Task<int> ListAsync(Target target, SessionFilter filter, int pageSize, string? after, bool all, bool json, CancellationToken cancellationToken)
    {
        if (pageSize is < 1 or > 1000)
        {
            throw new UsageException("--limit must be between 1 and 1000");
        }

        await using var db = SessionDatabase.Open(target, create: false);
        await using (var connection = await db.OpenConnectionAsync(cancellationToken))
        {
            await db.RequireSessionTableAsync(connection, "list", cancellationToken);
        }

        var sessions = new List<SessionInfo>();
        string? token = after;
        try
        {
            do
            {
                var page = await db.Manager.QueryAsync(filter, pageSize, token, cancellationToken);
                sessions.AddRange(page.Sessions);
                token = page.ContinuationToken;
            }
            while (all && token is not null);
        }
        catch (ArgumentException ex) when (ex.ParamName == "continuationToken")
        {
            throw new UsageException("--after is not a continuation token printed by list");
        }

        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(new { sessions, continuationToken = token }, Json));
            return ExitCodes.Done;
        }

        var rows = sessions.Select(s => new[] { s.Id, s.UserId ?? "-", Format.Time(s.CreatedAt), Format.Time(s.LastAccessAt), s.IpAddress ?? "-", s.UserAgent ?? "-" }).ToList();
        string[] header = ["ID", "USER", "CREATED", "LAST ACCESS", "IP", "USER AGENT"];
        var widths = header.Select((h, i) => rows.Select(r => r[i].Length).Append(h.Length).Max()).ToArray();
        Console.WriteLine(string.Join("  ", header.Select((h, i) => h.PadRight(widths[i]))).TrimEnd());
        foreach (var row in rows)
        {
            Console.WriteLine(string.Join("  ", row.Select((c, i) => c.PadRight(widths[i]))).TrimEnd());
        }

        Console.WriteLine(token is null
            ? $"{Format.Count(sessions.Count, "session", "sessions")}"
            : $"{Format.Count(sessions.Count, "session", "sessions")}; more with --after {token}");
        return ExitCodes.Done;
    }

    public static async Task<int> RevokeAsync(Target target, string? sessionId, string? userId, string? exceptId, CancellationToken cancellationToken)
    {
        if ((sessionId is null) == (userId is null))
        {
            throw new UsageException("give either --session ID or --user USER");
        }

        if (exceptId is not null && userId is null)
        {
            throw new UsageException("--except goes with --user");
        }

        if (!IsSessionId(sessionId) || !IsSessionId(exceptId))
        {
            throw new UsageException("a session ID is 64 hexadecimal characters, as list shows it");
        }

        await using var db = SessionDatabase.Open(target, create: false);
        await using (var connection = await db.OpenConnectionAsync(cancellationToken))
        {
            await db.RequireSessionTableAsync(connection, "revoke", cancellationToken);
        }

        var ended = sessionId is not null
            ? await db.Manager.RevokeAsync(sessionId.ToLowerInvariant(), cancellationToken) ? 1 : 0
            : await db.Manager.RevokeAllForUserAsync(userId!, exceptId?.ToLowerInvariant(), cancellationToken);
        Console.WriteLine($"{Format.Count(ended, "session", "sessions")} ended");
        return ExitCodes.Done;

        static bool IsSessionId(string? id) => id is null || (id.Length == 64 && id.All(char.IsAsciiHexDigit));
    }

    public static async Task<int> ClearAsync(Target target, bool yes, CancellationToken cancellationToken)
    {
        await using var db = SessionDatabase.Open(target, create: false);
        await using var connection = await db.OpenConnectionAsync(cancellationToken);
        await db.RequireSessionTableAsync(connection, "clear", cancellationToken);
        if (!Confirm(yes, "clear", $"Delete every session in \"{target.TableName}\" ({db.Describe()})?"))
        {
            return ExitCodes.Failed;
        }

        // Short batches, each its own transaction: the app keeps answering while the table empties.
        long deleted = 0;
        int last;
        do
        {
            last = await connection.ExecuteAsync(new CommandDefinition(db.Sql.DeleteBatch, new { Limit = ClearBatchSize }, cancellationToken: cancellationToken));
            deleted += last;
        }
        while (last > 0);

        Console.WriteLine($"deleted {Format.Count(deleted, "session", "sessions")}");
        return ExitCodes.Done;
    }

    public static async Task<int> DropAsync(Target target, bool yes, CancellationToken cancellationToken)
    {
        await using var db = SessionDatabase.Open(target, create: false);
        await using var connection = await db.OpenConnectionAsync(cancellationToken);
        await db.RequireSessionTableAsync(connection, "drop", cancellationToken, acceptOlderSchema: true);

        if (!Confirm(yes, "drop", $"Drop the table \"{target.TableName}\" and every session in it ({db.Describe()})?"))
        {
            return ExitCodes.Failed;
        }

        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            await connection.ExecuteAsync(new CommandDefinition(db.Sql.DropTable, new { db.Sql.TableName }, transaction, cancellationToken: cancellationToken));
            await transaction.CommitAsync(cancellationToken);
        }

        Console.WriteLine($"dropped table \"{target.TableName}\" and its schema record");
        return ExitCodes.Done;
    }

    /// <summary>Asks on a terminal; with stdin redirected, only --yes goes ahead (bad usage otherwise).</summary>
    private static bool Confirm(bool yes, string command, string question)
    {
        if (yes)
        {
            return true;
        }

        if (Console.IsInputRedirected)
        {
            throw new UsageException($"{command} needs --yes when standard input is not a terminal; nothing was changed");
        }

        Console.Write($"{question} [y/N] ");
        var answer = Console.ReadLine()?.Trim();
        if (string.Equals(answer, "y", StringComparison.OrdinalIgnoreCase) || string.Equals(answer, "yes", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        Console.WriteLine("nothing was changed");
        return false;
    }

    private static async Task<long?> SchemaVersionAsync(SessionDatabase db, DbConnection connection, CancellationToken cancellationToken)
    {
        try
        {
            return await connection.ExecuteScalarAsync<long?>(new CommandDefinition(db.Sql.SelectSchemaVersion, new { db.Sql.TableName }, cancellationToken: cancellationToken));
        }
        catch (DbException)
        {
            return null; // no schema table: a table made before versions were recorded
        }
    }

    private static async Task<(string Label, long Size, long? Wal)> SizeAsync(SessionDatabase db, DbConnection connection, CancellationToken cancellationToken)
    {
        if (db.Target.IsSqlite)
        {
            var path = db.Target.SqlitePath;
            var wal = new FileInfo(path + "-wal");
            return ("database size", new FileInfo(path).Length, wal.Exists ? wal.Length : 0);
        }

        // A partitioned table has no storage of its own: its size is its partitions' (pg_partition_tree is empty for a plain table).
        var size = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT (pg_total_relation_size(t) + coalesce((SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree(t) WHERE relid <> t), 0))::bigint " +
            "FROM (SELECT quote_ident(@TableName)::regclass AS t) AS x;",
            new { db.Sql.TableName },
            cancellationToken: cancellationToken));
        return ("table size", size, null);
    }

    /// <summary>A progress bar on a terminal; a plain line at most once a second when the output is redirected.</summary>
    private sealed class Progress(long total)
    {
        private readonly Stopwatch _sinceLine = Stopwatch.StartNew();
        private readonly bool _terminal = !Console.IsOutputRedirected;

        public void Report(long done)
        {
            if (_terminal)
            {
                const int width = 30;
                var fraction = total <= 0 ? 1 : Math.Min(1, (double)done / total);
                var filled = (int)(fraction * width);
                Console.Write($"\r[{new string('#', filled)}{new string('.', width - filled)}] {done}/{Math.Max(total, done)}");
            }
            else if (_sinceLine.Elapsed >= TimeSpan.FromSeconds(1))
            {
                Console.WriteLine($"deleted {done} of about {Math.Max(total, done)}");
                _sinceLine.Restart();
            }
        }

        public void Done()
        {
            if (_terminal)
            {
                Console.WriteLine();
            }
        }
    }
}
