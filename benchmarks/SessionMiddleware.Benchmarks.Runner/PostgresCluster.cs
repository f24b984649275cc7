using System.Globalization;
using Npgsql;
using SessionMiddleware.Tooling;

namespace SessionMiddleware.Benchmarks.Runner;

/// <summary>
/// A throwaway PostgreSQL cluster for the ours-postgres configuration, made the way the tests make theirs
/// (SessionMiddleware.Tests/Infrastructure/PostgresServer.cs): <c>initdb</c> in a temp folder (as the <c>postgres</c>
/// user when the runner is root, as PostgreSQL refuses root), <c>pg_ctl start</c> on a free 127.0.0.1 port with its
/// socket in that folder, one database per round, stopped and deleted at the end. Unlike the tests' cluster it keeps
/// PostgreSQL's durability settings (fsync, synchronous_commit and full_page_writes on): the benchmark compares
/// durable stores. pg_ctl detaches the server from the runner, so it is stopped explicitly: on dispose, on process
/// exit and Ctrl-C, and by a detached watchdog if the runner is killed outright.
/// The cluster mechanics are <see cref="ThrowawayPostgres"/> (build/shared/ThrowawayPostgres.cs, shared with the
/// tests); this class adds the benchmark's settings, the report's description and a database per round.
/// </summary>
internal sealed class PostgresCluster : IAsyncDisposable
{
    /// <summary>The settings given to the server on its command line (everything else is initdb's default).</summary>
    public static readonly string[] Settings =
    [
        "listen_addresses=127.0.0.1",
        "max_connections=200",
        "shared_buffers=128MB",
        "fsync=on",
        "synchronous_commit=on",
        "full_page_writes=on",
        "log_min_messages=warning",
    ];

    private readonly ThrowawayPostgres _postgres;
    private readonly object _stopLock = new();
    private bool _stopped;
    private int _databases;

    private PostgresCluster(ThrowawayPostgres postgres)
    {
        _postgres = postgres;
    }

    /// <summary>The temp folder holding the data directory, the log and the socket.</summary>
    public string Folder => _postgres.Folder;

    public int Port => _postgres.Port;

    /// <summary>The postmaster's process id (first line of postmaster.pid), or null when it cannot be read.</summary>
    public int? ServerProcessId
    {
        get
        {
            try
            {
                var first = File.ReadLines(Path.Combine(_postgres.DataFolder, "postmaster.pid")).FirstOrDefault();
                return int.TryParse(first, NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid) ? pid : null;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return null;
            }
        }
    }

    public string Version { get; private set; } = "";

    /// <summary>What the report says about the server: version and the settings that matter for the figures.</summary>
    public string Description => $"PostgreSQL {Version} on 127.0.0.1:{Port} (TCP), {string.Join(", ", Settings.Where(s => !s.StartsWith("log_", StringComparison.Ordinal) && !s.StartsWith("listen_", StringComparison.Ordinal)))}";

    /// <summary>
    /// Starts a cluster, or returns the reason it cannot (no binaries, no postgres user, initdb or start failed):
    /// ours-postgres is then reported as not measured instead of failing the run.
    /// </summary>
    public static async Task<(PostgresCluster? Cluster, string? Reason)> TryStartAsync()
    {
        var bin = ThrowawayPostgres.FindBinFolder();
        if (bin is null)
        {
            return (null, "no PostgreSQL server binaries (initdb, pg_ctl) in $SESSIONMIDDLEWARE_PG_BIN, /usr/lib/postgresql/*/bin or PATH; " +
                "build/bench installs them with apt (apt-get install postgresql) when it can");
        }

        if (!await ThrowawayPostgres.CanRunServerAsync())
        {
            return (null, $"running as root, and there is no '{ThrowawayPostgres.ServerUser}' user to run PostgreSQL as (PostgreSQL refuses root)");
        }

        // The report keeps the first line of a failure: the failed command and its output go there.
        var cluster = new PostgresCluster(ThrowawayPostgres.Create(bin, "smbench-pg-", oneLineFailures: true));
        try
        {
            await cluster.StartAsync();
            return (cluster, null);
        }
        catch (Exception ex) when (ex is InvalidOperationException or NpgsqlException or IOException or System.ComponentModel.Win32Exception)
        {
            await cluster.DisposeAsync();
            return (null, ex.Message.Split('\n')[0]);
        }
    }

    private async Task StartAsync()
    {
        await _postgres.InitAsync();

        // From here on the server may be running: make sure it is stopped however the runner ends.
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Stop();
        Console.CancelKeyPress += (_, _) => Stop();

        if (await _postgres.StartAsync(Settings) is { } lastError)
        {
            throw new InvalidOperationException($"PostgreSQL did not start: {lastError.Message.Split('\n')[0]}\n{_postgres.LogTail()}", lastError);
        }

        await using var connection = new NpgsqlConnection(ConnectionString("postgres", pooling: false));
        await connection.OpenAsync();
        Version = connection.PostgreSqlVersion.ToString();
    }

    /// <summary>The superuser connection string of a database; the server gets a pooled one (Npgsql's defaults).</summary>
    public string ConnectionString(string database, bool pooling = true) =>
        $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database};Pooling={pooling}";

    /// <summary>Creates an empty database for one round and returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync(string label)
    {
        var name = $"bench_{label}_{Interlocked.Increment(ref _databases).ToString(CultureInfo.InvariantCulture)}".Replace('-', '_');
        try
        {
            await using var connection = new NpgsqlConnection(ConnectionString("postgres", pooling: false));
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await command.ExecuteNonQueryAsync();
        }
        catch (NpgsqlException ex)
        {
            throw new InvalidOperationException($"Could not create the PostgreSQL database {name}: {ex.Message}", ex);
        }

        return ConnectionString(name);
    }

    /// <summary>Drops a database made by <see cref="CreateDatabaseAsync"/> (its server has ended; FORCE closes any leftover connection).</summary>
    public async Task DropDatabaseAsync(string connectionString)
    {
        var name = new NpgsqlConnectionStringBuilder(connectionString).Database!;
        try
        {
            await using var connection = new NpgsqlConnection(ConnectionString("postgres", pooling: false));
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", connection);
            await command.ExecuteNonQueryAsync();
        }
        catch (NpgsqlException)
        {
            // The whole cluster is deleted at the end anyway.
        }
    }

    /// <summary>Stops the cluster (fast shutdown, immediate if that fails) and deletes its folder; safe to call twice.</summary>
    public void Stop()
    {
        lock (_stopLock)
        {
            if (_stopped)
            {
                return;
            }

            _stopped = true;
        }

        if (_postgres.StopAndDeleteAsync().GetAwaiter().GetResult() is { } ex)
        {
            Console.Error.WriteLine($"Could not delete the PostgreSQL folder {Folder}: {ex.Message}");
        }
    }

    public ValueTask DisposeAsync()
    {
        Stop();
        _postgres.Dispose();
        return ValueTask.CompletedTask;
    }
}
