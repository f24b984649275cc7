// Times the schema 1 -> 2 migration (MigrateServerSideSessionsAsync) of a schema-1 session table of N rows, on a SQLite
// file and on a throwaway PostgreSQL server, while another connection does what a server does meanwhile: it reads one
// session and touches it with schema 1's statement, every 20 ms each, on two connections of their own. It reports the migration's time and the longest
// wait of each probe. docs/operations.md ("Upgrading") has the figures.
//
//   dotnet run -c Release --project benchmarks/SessionMiddleware.Benchmarks.Migration -- [--rows 1000000] [--store sqlite|postgres|both]
using System.Diagnostics;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using SessionMiddleware.Tooling;

var rows = 1_000_000;
var store = "both";
for (var i = 0; i < args.Length - 1; i += 2)
{
    switch (args[i])
    {
        case "--rows": rows = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
        case "--store": store = args[i + 1]; break;
        default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
    }
}

var repo = AppContext.BaseDirectory;
while (!File.Exists(Path.Combine(repo, "SessionMiddleware.sln")))
{
    repo = Path.GetDirectoryName(repo.TrimEnd('/')) ?? throw new InvalidOperationException("run from inside the repository");
}

var fixtures = Path.Combine(repo, "SessionMiddleware.Tests", "Fixtures");
Console.WriteLine($"schema 1 -> 2 migration of {rows:N0} rows ({Environment.ProcessorCount} cores)");
if (store is "sqlite" or "both")
{
    await SqliteAsync();
}

if (store is "postgres" or "both")
{
    await PostgresAsync();
}

return 0;

async Task SqliteAsync()
{
    var folder = Directory.CreateTempSubdirectory("smbench-migrate-");
    try
    {
        var file = Path.Combine(folder.FullName, "sessions.db");
        File.Copy(Path.Combine(fixtures, "sessions-v1.db"), file);
        var connectionString = $"Data Source={file};Pooling=False";
        await using (var connection = new SqliteConnection(connectionString))
        {
            await connection.OpenAsync();
            await ExecAsync(connection, "PRAGMA journal_mode=WAL;");
            await ExecAsync(connection,
                "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < " + rows.ToString(CultureInfo.InvariantCulture) + ") " +
                "INSERT INTO sessions (id, user_id, data, created_at, last_access, version, ip, user_agent) " +
                "SELECT randomblob(32), CASE WHEN i % 3 = 0 THEN 'user' || i END, randomblob(200), 1767268800 + i % 3600, 1767268800 + i % 3600, 1, '10.0.0.1', 'Mozilla/5.0 (X11; Linux x86_64)' FROM g;");
            await ExecAsync(connection, "PRAGMA wal_checkpoint(TRUNCATE);");
        }

        Console.WriteLine($"sqlite: {new FileInfo(file).Length / 1_048_576} MiB before");

        // What a schema-1 server does meanwhile, with the store's default busy timeout (5 s).
        await using var reader = new SqliteConnection(connectionString + ";Default Timeout=5");
        await using var writer = new SqliteConnection(connectionString + ";Default Timeout=5");
        await reader.OpenAsync();
        await writer.OpenAsync();
        await ExecAsync(writer, "PRAGMA busy_timeout=5000;");
        var key = await ScalarAsync(reader, "SELECT id FROM sessions ORDER BY id LIMIT 1 OFFSET 10");
        await RunAsync("sqlite", $"Data Source={file}", postgres: false, reader, writer, key);
    }
    finally
    {
        folder.Delete(recursive: true);
    }
}

async Task PostgresAsync()
{
    var bin = ThrowawayPostgres.FindBinFolder() ?? throw new InvalidOperationException("no PostgreSQL binaries");
    using var server = ThrowawayPostgres.Create(bin, "smbench-migrate-pg-");
    await server.InitAsync();
    if (await server.StartAsync(["listen_addresses=127.0.0.1", "shared_buffers=128MB", "log_min_messages=warning"]) is { } error)
    {
        throw new InvalidOperationException("PostgreSQL did not start: " + server.LogTail(), error);
    }

    try
    {
        var connectionString = $"Host=127.0.0.1;Port={server.Port};Username=postgres;Database=postgres;Pooling=False;Command Timeout=0";
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            await ExecAsync(connection, await File.ReadAllTextAsync(Path.Combine(fixtures, "sessions-v1.postgresql.sql")));
            await ExecAsync(connection,
                "INSERT INTO sessions (id, user_id, data, created_at, last_access, version, ip, user_agent) " +
                "SELECT sha256(int8send(i)), CASE WHEN i % 3 = 0 THEN 'user' || i END, decode(repeat(md5(i::text), 12) || '0000000000000000', 'hex'), " +
                "1767268800 + i % 3600, 1767268800 + i % 3600, 1, '10.0.0.1', 'Mozilla/5.0 (X11; Linux x86_64)' " +
                $"FROM generate_series(1, {rows.ToString(CultureInfo.InvariantCulture)}) i;");
            await ExecAsync(connection, "VACUUM ANALYZE sessions");
            await ExecAsync(connection, "CHECKPOINT");
            var size = await ScalarAsync(connection, "SELECT pg_total_relation_size('sessions')");
            Console.WriteLine($"postgres {connection.PostgreSqlVersion}: {Convert.ToInt64(size, CultureInfo.InvariantCulture) / 1_048_576} MiB before");
        }

        await using var reader = new NpgsqlConnection(connectionString);
        await using var writer = new NpgsqlConnection(connectionString);
        await reader.OpenAsync();
        await writer.OpenAsync();
        var key = await ScalarAsync(reader, "SELECT id FROM sessions ORDER BY id LIMIT 1 OFFSET 10");
        // The app's connection string: Npgsql's default command timeout (30 s).
        await RunAsync("postgres", $"Host=127.0.0.1;Port={server.Port};Username=postgres;Database=postgres", postgres: true, reader, writer, key);
        await using var after = new NpgsqlConnection(connectionString);
        await after.OpenAsync();
        var sizeAfter = await ScalarAsync(after, "SELECT pg_total_relation_size('sessions')");
        Console.WriteLine($"postgres: {Convert.ToInt64(sizeAfter, CultureInfo.InvariantCulture) / 1_048_576} MiB after (before VACUUM)");
    }
    finally
    {
        await server.StopAndDeleteAsync();
    }
}

async Task RunAsync(string name, string connectionString, bool postgres, System.Data.Common.DbConnection reader, System.Data.Common.DbConnection writer, object key)
{
    var builder = Host.CreateApplicationBuilder();
    builder.Logging.ClearProviders();
    var sessions = builder.Services.AddServerSideSessions(o =>
    {
        o.ConnectionString = connectionString;
        o.IdleTimeout = TimeSpan.FromMinutes(20);
    });
    if (postgres)
    {
        sessions.UsePostgreSql(connectionString);
    }

    using var host = builder.Build();
    Exception? failed = null;
    using var stop = new CancellationTokenSource();
    var reads = ProbeAsync(reader, "SELECT data FROM sessions WHERE id = @id", key, stop.Token);
    var touches = ProbeAsync(writer, "UPDATE sessions SET last_access = last_access + 1 WHERE id = @id AND last_access >= 0 AND created_at >= 0", key, stop.Token);
    await Task.Delay(200);
    var stopwatch = Stopwatch.StartNew();
    try
    {
        await host.MigrateServerSideSessionsAsync();
    }
    catch (Exception ex) when (ex is System.Data.Common.DbException or TimeoutException)
    {
        failed = ex;
    }

    var migration = stopwatch.Elapsed;
    await Task.Delay(200);
    await stop.CancelAsync();
    var (longestRead, readErrors) = await reads;
    var (longestTouch, touchErrors) = await touches;
    var errors = readErrors.Concat(touchErrors).Distinct().ToList();
    Console.WriteLine($"{name}: migration {(failed is null ? "" : "FAILED (" + failed.Message.Split('\n')[0] + ") after ")}{migration.TotalSeconds:F1} s; meanwhile the longest read waited {longestRead.TotalMilliseconds:F0} ms, " +
        $"the longest schema-1 touch {longestTouch.TotalMilliseconds:F0} ms; probe errors: {(errors.Count == 0 ? "none" : string.Join("; ", errors))}");
}

// One statement every 20 ms until stopped: the longest it waited, and the errors.
static async Task<(TimeSpan Longest, List<string> Errors)> ProbeAsync(System.Data.Common.DbConnection connection, string sql, object key, CancellationToken stop)
{
    var longest = TimeSpan.Zero;
    var errors = new List<string>();
    while (!stop.IsCancellationRequested)
    {
        var elapsed = await TimeAsync(sql);
        longest = elapsed > longest ? elapsed : longest;
        await Task.Delay(20, CancellationToken.None);
    }

    return (longest, errors);

    async Task<TimeSpan> TimeAsync(string sql)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            await using var command = connection.CreateCommand();
            command.CommandText = sql;
            var p = command.CreateParameter();
            p.ParameterName = "id";
            p.Value = key;
            command.Parameters.Add(p);
            await command.ExecuteNonQueryAsync(CancellationToken.None);
        }
        catch (System.Data.Common.DbException ex)
        {
            errors.Add(ex.Message.Split('\n')[0]);
        }

        return Stopwatch.GetElapsedTime(started);
    }
}

static async Task ExecAsync(System.Data.Common.DbConnection connection, string sql)
{
    await using var command = connection.CreateCommand();
    command.CommandText = sql;
    command.CommandTimeout = 0;
    await command.ExecuteNonQueryAsync();
}

static async Task<object> ScalarAsync(System.Data.Common.DbConnection connection, string sql)
{
    await using var command = connection.CreateCommand();
    command.CommandText = sql;
    return (await command.ExecuteScalarAsync())!;
}
