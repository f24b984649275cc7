using System.Globalization;
using Npgsql;
using SessionMiddleware.Tooling;

namespace SessionMiddleware.Tests.Infrastructure;

/// <summary>
/// A throwaway PostgreSQL cluster for the tests: <c>initdb</c> in a temp folder (as the <c>postgres</c> user when the
/// tests run as root, as PostgreSQL refuses root), started with <c>pg_ctl</c> on a free 127.0.0.1 port with its
/// socket in that folder, one database per test, stopped and deleted when the test run ends
/// (<see cref="PostgresTestRun"/>). A watchdog stops it too if the test process dies without cleaning up.
/// The binaries are looked for in <c>$SESSIONMIDDLEWARE_PG_BIN</c>, <c>/usr/lib/postgresql/*/bin</c>, then PATH;
/// without them the tests fail with a message saying how to install them.
/// The cluster mechanics are <see cref="ThrowawayPostgres"/> (build/shared/ThrowawayPostgres.cs, shared with the
/// benchmark runner); this class adds the tests' settings, the one shared server and the per-test databases.
/// </summary>
internal sealed class PostgresServer : IAsyncDisposable
{
    /// <summary>The settings given to the server on its command line: fast and throwaway (no fsync).</summary>
    private static readonly string[] Settings =
    [
        "listen_addresses=127.0.0.1",
        "max_connections=300",
        "shared_buffers=64MB",
        "fsync=off",
        "synchronous_commit=off",
        "full_page_writes=off",
        "log_min_messages=warning",
    ];

    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static PostgresServer? _shared;
    private static Exception? _startFailure;
    private static int _databaseCounter;

    private readonly ThrowawayPostgres _postgres;
    private bool _stopped;

    private PostgresServer(ThrowawayPostgres postgres)
    {
        _postgres = postgres;
    }

    /// <summary>The temp folder holding the data directory, the log and the socket.</summary>
    public string Folder => _postgres.Folder;

    public int Port => _postgres.Port;

    public string Version { get; private set; } = "";

    /// <summary>The superuser connection string of a database (no pooling).</summary>
    public string ConnectionString(string database, bool pooling = false) =>
        $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database};Pooling={pooling};Timeout=30;Command Timeout=120";

    /// <summary>The one server of this test run, started at first use.</summary>
    public static async Task<PostgresServer> SharedAsync()
    {
        await Gate.WaitAsync();
        try
        {
            if (_startFailure is not null)
            {
                // Fail every PostgreSQL test with the first failure's reason rather than trying again each time.
                throw new InvalidOperationException("The PostgreSQL test cluster could not be started: " + _startFailure.Message, _startFailure);
            }

            if (_shared is null)
            {
                PostgresServer server;
                try
                {
                    server = await StartAsync();
                }
                catch (Exception ex)
                {
                    _startFailure = ex;
                    throw;
                }

                AppDomain.CurrentDomain.ProcessExit += (_, _) => server.StopAsync().AsTask().GetAwaiter().GetResult();
                _shared = server;
            }

            return _shared;
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <summary>A server of the caller's own, for a test that stops it; the caller disposes it.</summary>
    public static Task<PostgresServer> StartOwnAsync() => StartAsync();

    /// <summary>Stops the shared server, if one was started.</summary>
    public static async Task StopSharedAsync()
    {
        await Gate.WaitAsync();
        try
        {
            if (_shared is not null)
            {
                await _shared.DisposeAsync();
                _shared = null;
            }
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <summary>Creates an empty database and returns its (pooled) connection string.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = "t" + Interlocked.Increment(ref _databaseCounter).ToString(CultureInfo.InvariantCulture) + "_" + Guid.NewGuid().ToString("N")[..8];
        await using var connection = new NpgsqlConnection(ConnectionString("postgres"));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
        await command.ExecuteNonQueryAsync();
        return ConnectionString(name, pooling: true);
    }

    /// <summary>Runs one statement on its own connection and returns the first column of the first row.</summary>
    public static async Task<T> ScalarAsync<T>(string connectionString, string sql, params (string Name, object Value)[] parameters)
    {
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        return (T)Convert.ChangeType((await command.ExecuteScalarAsync())!, typeof(T), CultureInfo.InvariantCulture);
    }

    /// <summary>Drops a database made by <see cref="CreateDatabaseAsync"/>, closing its connections.</summary>
    public async Task DropDatabaseAsync(string connectionString)
    {
        var name = new NpgsqlConnectionStringBuilder(connectionString).Database!;
        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(ConnectionString("postgres"));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<PostgresServer> StartAsync()
    {
        var bin = FindBinFolder();
        if (!await ThrowawayPostgres.CanRunServerAsync())
        {
            throw new InvalidOperationException(
                $"The PostgreSQL tests run as root, but PostgreSQL refuses to run as root and there is no '{ThrowawayPostgres.ServerUser}' user to run it as. " +
                "Installing Debian's 'postgresql' package creates it (build/test does: apt-get install -y postgresql).");
        }

        var server = new PostgresServer(ThrowawayPostgres.Create(bin, "sm-pg-"));
        try
        {
            await server._postgres.InitAsync();
            if (await server._postgres.StartAsync(Settings) is { } lastError)
            {
                throw new InvalidOperationException($"PostgreSQL did not start. Log:\n{server._postgres.LogTail()}", lastError);
            }

            await using var connection = new NpgsqlConnection(server.ConnectionString("postgres"));
            await connection.OpenAsync();
            server.Version = connection.PostgreSqlVersion.ToString();
            TestContext.Progress.WriteLine($"PostgreSQL {server.Version} test cluster started on 127.0.0.1:{server.Port} in {server.Folder}");
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>Stops the cluster and deletes its folder.</summary>
    public async ValueTask StopAsync()
    {
        if (_stopped)
        {
            return;
        }

        _stopped = true;
        NpgsqlConnection.ClearAllPools();
        if (await _postgres.StopAndDeleteAsync() is { } ex)
        {
            TestContext.Progress.WriteLine($"Could not delete the PostgreSQL test folder {Folder}: {ex.Message}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _postgres.Dispose();
    }

    private static string FindBinFolder()
    {
        if (ThrowawayPostgres.ConfiguredBinFolder is { } configured)
        {
            return File.Exists(Path.Combine(configured, "initdb"))
                ? configured
                : throw new InvalidOperationException($"SESSIONMIDDLEWARE_PG_BIN={configured} holds no initdb.");
        }

        return ThrowawayPostgres.FindBinFolder() ?? throw new InvalidOperationException(
            "The PostgreSQL tests need the PostgreSQL server binaries (initdb, pg_ctl), found neither in /usr/lib/postgresql/*/bin nor on PATH. " +
            "Install them (Debian/Ubuntu: apt-get install -y postgresql; build/test does this itself) or set SESSIONMIDDLEWARE_PG_BIN to their folder.");
    }
}
