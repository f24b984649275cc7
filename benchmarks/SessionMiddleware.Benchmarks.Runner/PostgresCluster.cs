using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace SessionMiddleware.Benchmarks.Runner;

/// <summary>
/// A throwaway PostgreSQL cluster for the ours-postgres configuration, made the way the tests make theirs
/// (SessionMiddleware.Tests/Infrastructure/PostgresServer.cs): <c>initdb</c> in a temp folder (as the <c>postgres</c>
/// user when the runner is root, as PostgreSQL refuses root), <c>pg_ctl start</c> on a free 127.0.0.1 port with its
/// socket in that folder, one database per round, stopped and deleted at the end. Unlike the tests' cluster it keeps
/// PostgreSQL's durability settings (fsync, synchronous_commit and full_page_writes on): the benchmark compares
/// durable stores. pg_ctl detaches the server from the runner, so it is stopped explicitly: on dispose, on process
/// exit and Ctrl-C, and by a detached watchdog if the runner is killed outright.
/// </summary>
internal sealed class PostgresCluster : IAsyncDisposable
{
    private const string RunAsUser = "postgres";

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

    private readonly string _binFolder;
    private readonly bool _asRoot;
    private readonly object _stopLock = new();
    private Process? _watchdog;
    private bool _stopped;
    private int _databases;

    private PostgresCluster(string binFolder, string folder, bool asRoot)
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

    /// <summary>What the report says about the server: version and the settings that matter for the figures.</summary>
    public string Description => $"PostgreSQL {Version} on 127.0.0.1:{Port} (TCP), {string.Join(", ", Settings.Where(s => !s.StartsWith("log_", StringComparison.Ordinal) && !s.StartsWith("listen_", StringComparison.Ordinal)))}";

    /// <summary>
    /// Starts a cluster, or returns the reason it cannot (no binaries, no postgres user, initdb or start failed):
    /// ours-postgres is then reported as not measured instead of failing the run.
    /// </summary>
    public static async Task<(PostgresCluster? Cluster, string? Reason)> TryStartAsync()
    {
        var bin = FindBinFolder();
        if (bin is null)
        {
            return (null, "no PostgreSQL server binaries (initdb, pg_ctl) in $SESSIONMIDDLEWARE_PG_BIN, /usr/lib/postgresql/*/bin or PATH; " +
                "build/bench installs them with apt (apt-get install postgresql) when it can");
        }

        var asRoot = Environment.IsPrivilegedProcess;
        if (asRoot && (await RunAsync("id", ["-u", RunAsUser], TimeSpan.FromSeconds(10))).ExitCode != 0)
        {
            return (null, $"running as root, and there is no '{RunAsUser}' user to run PostgreSQL as (PostgreSQL refuses root)");
        }

        // The folder must be reachable by the postgres user: under /tmp when root (root's TMPDIR may not be).
        var root = asRoot ? "/tmp" : Path.GetTempPath();
        var folder = Path.Combine(root, "smbench-pg-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(folder);
        var cluster = new PostgresCluster(bin, folder, asRoot);
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
        if (_asRoot)
        {
            await MustRunAsync("chown", [$"{RunAsUser}:", Folder], asServerUser: false);
        }

        // --no-sync only skips initdb's own final fsync of the template files; the running server syncs every commit.
        await MustRunAsync(
            Path.Combine(_binFolder, "initdb"),
            ["-D", DataFolder, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"]);

        // From here on the server may be running: make sure it is stopped however the runner ends.
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Stop();
        Console.CancelKeyPress += (_, _) => Stop();

        Exception? lastError = null;
        for (var attempt = 0; attempt < 3 && Port == 0; attempt++)
        {
            var port = ChildProcesses.FreePort();
            var options = string.Join(' ', [$"-p {port}", $"-k {Folder}", .. Settings.Select(s => "-c " + s)]);
            try
            {
                await MustRunAsync(
                    Path.Combine(_binFolder, "pg_ctl"),
                    ["-D", DataFolder, "-l", Path.Combine(Folder, "postgres.log"), "-o", options, "-w", "-t", "60", "start"]);
                Port = port;
            }
            catch (InvalidOperationException ex)
            {
                lastError = ex; // most likely the port was taken meanwhile: try another
            }
        }

        if (Port == 0)
        {
            throw new InvalidOperationException($"PostgreSQL did not start: {lastError?.Message.Split('\n')[0]}\n{LogTail()}", lastError);
        }

        StartWatchdog();
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

        if (File.Exists(Path.Combine(DataFolder, "postmaster.pid")))
        {
            var pgCtl = Path.Combine(_binFolder, "pg_ctl");
            var result = RunAsync(Wrap(pgCtl, ["-D", DataFolder, "-m", "fast", "-w", "-t", "60", "stop"]), TimeSpan.FromSeconds(90)).GetAwaiter().GetResult();
            if (result.ExitCode != 0)
            {
                RunAsync(Wrap(pgCtl, ["-D", DataFolder, "-m", "immediate", "-w", "stop"]), TimeSpan.FromSeconds(60)).GetAwaiter().GetResult();
            }
        }

        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"Could not delete the PostgreSQL folder {Folder}: {ex.Message}");
        }
    }

    public ValueTask DisposeAsync()
    {
        Stop();
        _watchdog?.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// A shell loop, detached from the runner (its own session, so neither Ctrl-C nor killing the runner's process
    /// tree ends it), that stops the cluster and deletes its folder if the runner dies first; it ends by itself once
    /// the cluster is stopped normally.
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
            WorkingDirectory = "/",
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
                $"'{Path.GetFileName(command.File)} {string.Join(' ', command.Args)}' failed with exit code {result.ExitCode}: {result.Output.Trim()}\n{LogTail()}");
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

        // pg_ctl start leaves the server holding copies of these pipes: don't wait for their end past a moment.
        var output = await Task.WhenAny(Task.WhenAll(stdout, stderr), Task.Delay(TimeSpan.FromSeconds(5))) is Task<string[]> { IsCompletedSuccessfully: true } done
            ? string.Concat(done.Result)
            : "";
        return (process.ExitCode, output);
    }

    private static string? FindBinFolder()
    {
        static bool Has(string folder) => File.Exists(Path.Combine(folder, "initdb")) && File.Exists(Path.Combine(folder, "pg_ctl"));

        if (Environment.GetEnvironmentVariable("SESSIONMIDDLEWARE_PG_BIN") is { Length: > 0 } configured)
        {
            return Has(configured) ? configured : null;
        }

        if (Directory.Exists("/usr/lib/postgresql"))
        {
            var versioned = Directory.GetDirectories("/usr/lib/postgresql")
                .Select(d => (Folder: Path.Combine(d, "bin"), Version: int.TryParse(Path.GetFileName(d), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : 0))
                .Where(d => Has(d.Folder))
                .OrderByDescending(d => d.Version)
                .FirstOrDefault();
            if (versioned.Folder is not null)
            {
                return versioned.Folder;
            }
        }

        return (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault(Has);
    }
}
