using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace SessionMiddleware.Tests.Infrastructure;

/// <summary>
/// A throwaway PostgreSQL cluster for the tests: <c>initdb</c> in a temp folder (as the <c>postgres</c> user when the
/// tests run as root, as PostgreSQL refuses root), started with <c>pg_ctl</c> on a free 127.0.0.1 port with its
/// socket in that folder, one database per test, stopped and deleted when the test run ends
/// (<see cref="PostgresTestRun"/>). A watchdog stops it too if the test process dies without cleaning up.
/// The binaries are looked for in <c>$SESSIONMIDDLEWARE_PG_BIN</c>, <c>/usr/lib/postgresql/*/bin</c>, then PATH;
/// without them the tests fail with a message saying how to install them.
/// </summary>
internal sealed class PostgresServer : IAsyncDisposable
{
    private const string RunAsUser = "postgres";
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static PostgresServer? _shared;
    private static Exception? _startFailure;
    private static int _databaseCounter;

    private readonly string _binFolder;
    private readonly bool _asRoot;
    private Process? _watchdog;
    private bool _stopped;

    private PostgresServer(string binFolder, string folder, bool asRoot)
    {
        _binFolder = binFolder;
        Folder = folder;
        _asRoot = asRoot;
    }

    /// <summary>The temp folder holding the data directory, the log and the socket.</summary>
    public string Folder { get; }

    public string DataFolder => Path.Combine(Folder, "data");

    public int Port { get; private set; }

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
        var asRoot = Environment.IsPrivilegedProcess;
        if (asRoot && (await RunAsync("id", ["-u", RunAsUser], TimeSpan.FromSeconds(10))).ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"The PostgreSQL tests run as root, but PostgreSQL refuses to run as root and there is no '{RunAsUser}' user to run it as. " +
                "Installing Debian's 'postgresql' package creates it (build/test does: apt-get install -y postgresql).");
        }

        // The folder must be reachable by the postgres user: under /tmp when root (root's TMPDIR may not be).
        var root = asRoot ? "/tmp" : Path.GetTempPath();
        var folder = Path.Combine(root, "sm-pg-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(folder);
        var server = new PostgresServer(bin, folder, asRoot);
        try
        {
            if (asRoot)
            {
                await server.MustRunAsync("chown", [$"{RunAsUser}:", folder], asServerUser: false);
            }

            await server.MustRunAsync(
                Path.Combine(bin, "initdb"),
                ["-D", server.DataFolder, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"]);

            Exception? lastError = null;
            for (var attempt = 0; attempt < 3 && server.Port == 0; attempt++)
            {
                var port = FreePort();
                var options = string.Join(' ',
                    $"-p {port}",
                    $"-k {folder}",
                    "-c listen_addresses=127.0.0.1",
                    "-c max_connections=300",
                    "-c shared_buffers=64MB",
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                    "-c log_min_messages=warning");
                try
                {
                    await server.MustRunAsync(
                        Path.Combine(bin, "pg_ctl"),
                        ["-D", server.DataFolder, "-l", Path.Combine(folder, "postgres.log"), "-o", options, "-w", "-t", "60", "start"]);
                    server.Port = port;
                }
                catch (InvalidOperationException ex)
                {
                    lastError = ex; // most likely the port was taken meanwhile: try another
                }
            }

            if (server.Port == 0)
            {
                throw new InvalidOperationException($"PostgreSQL did not start. Log:\n{server.LogTail()}", lastError);
            }

            server.StartWatchdog();
            await using var connection = new NpgsqlConnection(server.ConnectionString("postgres"));
            await connection.OpenAsync();
            server.Version = connection.PostgreSqlVersion.ToString();
            TestContext.Progress.WriteLine($"PostgreSQL {server.Version} test cluster started on 127.0.0.1:{server.Port} in {folder}");
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
        if (File.Exists(Path.Combine(DataFolder, "postmaster.pid")))
        {
            var result = await RunAsync(Wrap(Path.Combine(_binFolder, "pg_ctl"), ["-D", DataFolder, "-m", "fast", "-w", "-t", "60", "stop"]), TimeSpan.FromSeconds(90));
            if (result.ExitCode != 0)
            {
                await RunAsync(Wrap(Path.Combine(_binFolder, "pg_ctl"), ["-D", DataFolder, "-m", "immediate", "-w", "stop"]), TimeSpan.FromSeconds(60));
            }
        }

        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            TestContext.Progress.WriteLine($"Could not delete the PostgreSQL test folder {Folder}: {ex.Message}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _watchdog?.Dispose();
    }

    /// <summary>
    /// A shell loop, detached from this process, that stops the cluster and deletes its folder if this process
    /// dies first (killed, crashed); it ends by itself once the cluster is stopped normally.
    /// </summary>
    private void StartWatchdog()
    {
        var pgCtl = Path.Combine(_binFolder, "pg_ctl");
        var script =
            $"while [ -d /proc/{Environment.ProcessId} ] && [ -f '{DataFolder}/postmaster.pid' ]; do sleep 1; done; " +
            $"if [ ! -d /proc/{Environment.ProcessId} ]; then '{pgCtl}' -D '{DataFolder}' -m immediate -w stop; rm -rf '{Folder}'; fi";
        var (file, args) = Wrap("setsid", ["bash", "-c", script]);
        var info = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        _watchdog = Process.Start(info);
    }

    private (string File, IReadOnlyList<string> Args) Wrap(string file, IReadOnlyList<string> args) =>
        _asRoot ? ("runuser", ["-u", RunAsUser, "--", file, .. args]) : (file, args);

    private async Task MustRunAsync(string file, IReadOnlyList<string> args, bool asServerUser = true)
    {
        (string File, IReadOnlyList<string> Args) command = asServerUser ? Wrap(file, args) : (file, args);
        var result = await RunAsync(command, TimeSpan.FromSeconds(120));
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"'{command.File} {string.Join(' ', command.Args)}' failed with exit code {result.ExitCode}:\n{result.Output}\n{LogTail()}");
        }
    }

    private string LogTail()
    {
        var log = Path.Combine(Folder, "postgres.log");
        return File.Exists(log) ? string.Join('\n', File.ReadLines(log).TakeLast(30)) : "";
    }

    private static Task<(int ExitCode, string Output)> RunAsync((string File, IReadOnlyList<string> Args) command, TimeSpan timeout) =>
        RunAsync(command.File, command.Args, timeout);

    private static async Task<(int ExitCode, string Output)> RunAsync(string file, IReadOnlyList<string> args, TimeSpan timeout)
    {
        var info = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = "/",
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {file}.");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            return (-1, $"timed out after {timeout}");
        }

        var output = await Task.WhenAny(Task.WhenAll(stdout, stderr), Task.Delay(TimeSpan.FromSeconds(5))) is Task<string[]> { IsCompletedSuccessfully: true } done
            ? string.Concat(done.Result)
            : "";
        return (process.ExitCode, output);
    }

    private static string FindBinFolder()
    {
        if (Environment.GetEnvironmentVariable("SESSIONMIDDLEWARE_PG_BIN") is { Length: > 0 } configured)
        {
            return File.Exists(Path.Combine(configured, "initdb"))
                ? configured
                : throw new InvalidOperationException($"SESSIONMIDDLEWARE_PG_BIN={configured} holds no initdb.");
        }

        if (Directory.Exists("/usr/lib/postgresql"))
        {
            var versioned = Directory.GetDirectories("/usr/lib/postgresql")
                .Select(d => (Folder: Path.Combine(d, "bin"), Version: int.TryParse(Path.GetFileName(d), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : 0))
                .Where(d => File.Exists(Path.Combine(d.Folder, "initdb")) && File.Exists(Path.Combine(d.Folder, "pg_ctl")))
                .OrderByDescending(d => d.Version)
                .FirstOrDefault();
            if (versioned.Folder is not null)
            {
                return versioned.Folder;
            }
        }

        foreach (var folder in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            if (File.Exists(Path.Combine(folder, "initdb")) && File.Exists(Path.Combine(folder, "pg_ctl")))
            {
                return folder;
            }
        }

        throw new InvalidOperationException(
            "The PostgreSQL tests need the PostgreSQL server binaries (initdb, pg_ctl), found neither in /usr/lib/postgresql/*/bin nor on PATH. " +
            "Install them (Debian/Ubuntu: apt-get install -y postgresql; build/test does this itself) or set SESSIONMIDDLEWARE_PG_BIN to their folder.");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
