using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace SessionMiddleware.Tooling;

/// <summary>
/// The mechanics of a throwaway PostgreSQL cluster, shared by the tests
/// (SessionMiddleware.Tests/Infrastructure/PostgresServer.cs) and the benchmark runner
/// (benchmarks/SessionMiddleware.Benchmarks.Runner/PostgresCluster.cs), which both compile this file:
/// <c>initdb</c> in a temp folder (as the <c>postgres</c> user when this process is root, as PostgreSQL refuses root),
/// <c>pg_ctl start</c> on a free 127.0.0.1 port with its socket in that folder, a detached watchdog that stops the
/// cluster if this process dies first, and <c>pg_ctl stop</c> plus deleting the folder at the end.
/// What the server is started with, how failures are reported and when it is stopped are the callers' business.
/// </summary>
internal sealed class ThrowawayPostgres : IDisposable
{
    /// <summary>The user the server runs as when this process is root.</summary>
    public const string ServerUser = "postgres";

    private readonly string _binFolder;
    private readonly bool _asRoot;
    private readonly bool _oneLineFailures;
    private Process? _watchdog;

    private ThrowawayPostgres(string binFolder, string folder, bool asRoot, bool oneLineFailures)
    {
        _binFolder = binFolder;
        Folder = folder;
        _asRoot = asRoot;
        _oneLineFailures = oneLineFailures;
    }

    /// <summary>The temp folder holding the data directory, the log and the socket.</summary>
    public string Folder { get; }

    /// <summary>The data directory (<c>initdb -D</c>), inside <see cref="Folder"/>.</summary>
    public string DataFolder => Path.Combine(Folder, "data");

    /// <summary>The TCP port the server listens on (127.0.0.1), 0 until <see cref="StartAsync"/> has started it.</summary>
    public int Port { get; private set; }

    /// <summary>The folder named by <c>$SESSIONMIDDLEWARE_PG_BIN</c>, or null when that is not set.</summary>
    public static string? ConfiguredBinFolder =>
        Environment.GetEnvironmentVariable("SESSIONMIDDLEWARE_PG_BIN") is { Length: > 0 } configured ? configured : null;

    /// <summary>Whether a folder holds the server binaries this class runs (<c>initdb</c> and <c>pg_ctl</c>).</summary>
    private static bool HasBinaries(string folder) =>
        File.Exists(Path.Combine(folder, "initdb")) && File.Exists(Path.Combine(folder, "pg_ctl"));

    /// <summary>
    /// The folder of the server binaries: <see cref="ConfiguredBinFolder"/> when set (null if it lacks them), else the
    /// newest <c>/usr/lib/postgresql/*/bin</c> that has them, else the first PATH folder that has them, else null.
    /// </summary>
    public static string? FindBinFolder()
    {
        if (ConfiguredBinFolder is { } configured)
        {
            return HasBinaries(configured) ? configured : null;
        }

        if (Directory.Exists("/usr/lib/postgresql"))
        {
            var versioned = Directory.GetDirectories("/usr/lib/postgresql")
                .Select(d => (Folder: Path.Combine(d, "bin"), Version: int.TryParse(Path.GetFileName(d), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : 0))
                .Where(d => HasBinaries(d.Folder))
                .OrderByDescending(d => d.Version)
                .FirstOrDefault();
            if (versioned.Folder is not null)
            {
                return versioned.Folder;
            }
        }

        return (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault(HasBinaries);
    }

    /// <summary>
    /// False when this process is root and there is no <see cref="ServerUser"/> user to run the server as
    /// (<c>id -u postgres</c> fails); true otherwise.
    /// </summary>
    public static async Task<bool> CanRunServerAsync() =>
        !Environment.IsPrivilegedProcess || (await RunAsync("id", ["-u", ServerUser], TimeSpan.FromSeconds(10))).ExitCode == 0;

    /// <summary>
    /// Creates an empty folder named <paramref name="folderPrefix"/> plus a random part for a cluster run with the
    /// binaries of <paramref name="binFolder"/>; nothing runs yet (<see cref="InitAsync"/>, then <see cref="StartAsync"/>).
    /// With <paramref name="oneLineFailures"/> a failed command's message names the program without its folder and has
    /// its trimmed output on the first line (for callers that report only that line); otherwise it names the full
    /// path and has the output on lines of its own.
    /// </summary>
    public static ThrowawayPostgres Create(string binFolder, string folderPrefix, bool oneLineFailures = false)
    {
        var asRoot = Environment.IsPrivilegedProcess;

        // The folder must be reachable by the postgres user: under /tmp when root (root's TMPDIR may not be).
        var root = asRoot ? "/tmp" : Path.GetTempPath();
        var folder = Path.Combine(root, folderPrefix + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(folder);
        return new ThrowawayPostgres(binFolder, folder, asRoot, oneLineFailures);
    }

    /// <summary>
    /// Hands the folder to the server user when root, then runs <c>initdb</c> (superuser <c>postgres</c>, trust
    /// authentication, UTF8, C locale); throws <see cref="InvalidOperationException"/> when a command fails.
    /// </summary>
    public async Task InitAsync()
    {
        if (_asRoot)
        {
            await MustRunAsync("chown", [$"{ServerUser}:", Folder], asServerUser: false);
        }

        // --no-sync only skips initdb's own final fsync of the template files; what the running server syncs is up
        // to the settings it is started with.
        await MustRunAsync(
            Path.Combine(_binFolder, "initdb"),
            ["-D", DataFolder, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"]);
    }

    /// <summary>
    /// Starts the server with <c>pg_ctl start</c> (waiting up to 60 s) on a free loopback port with its socket in
    /// <see cref="Folder"/> and each of <paramref name="settings"/> as a <c>-c</c> option, trying up to three ports;
    /// once it runs, sets <see cref="Port"/>, starts the watchdog and returns null. Returns the last attempt's error
    /// when it did not start (<see cref="LogTail"/> says more).
    /// </summary>
    public async Task<Exception?> StartAsync(IEnumerable<string> settings)
    {
        Exception? lastError = null;
        for (var attempt = 0; attempt < 3 && Port == 0; attempt++)
        {
            var port = FreePort();
            var options = string.Join(' ', [$"-p {port}", $"-k {Folder}", .. settings.Select(s => "-c " + s)]);
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
            return lastError;
        }

        StartWatchdog();
        return null;
    }

    /// <summary>
    /// Stops the server if it runs (<c>pg_ctl stop</c>, fast shutdown within 60 s, immediate if that fails) and
    /// deletes <see cref="Folder"/>. Returns the error that kept the folder from being deleted, or null.
    /// </summary>
    public async Task<Exception?> StopAndDeleteAsync()
    {
        if (File.Exists(Path.Combine(DataFolder, "postmaster.pid")))
        {
            var pgCtl = Path.Combine(_binFolder, "pg_ctl");
            var result = await RunAsync(Wrap(pgCtl, ["-D", DataFolder, "-m", "fast", "-w", "-t", "60", "stop"]), TimeSpan.FromSeconds(90));
            if (result.ExitCode != 0)
            {
                await RunAsync(Wrap(pgCtl, ["-D", DataFolder, "-m", "immediate", "-w", "stop"]), TimeSpan.FromSeconds(60));
            }
        }

        try
        {
            Directory.Delete(Folder, recursive: true);
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return ex;
        }
    }

    /// <summary>The last 30 lines of the server's log, or an empty string when there is none yet.</summary>
    public string LogTail()
    {
        var log = Path.Combine(Folder, "postgres.log");
        return File.Exists(log) ? string.Join('\n', File.ReadLines(log).TakeLast(30)) : "";
    }

    /// <summary>Releases the watchdog's process handle (the watchdog itself ends once the cluster is stopped).</summary>
    public void Dispose() => _watchdog?.Dispose();

    /// <summary>
    /// A shell loop, detached from this process (its own session, so neither Ctrl-C nor killing this process's tree
    /// ends it), that stops the cluster and deletes its folder if this process dies first (killed, crashed); it ends
    /// by itself once the cluster is stopped normally.
    /// </summary>
    private void StartWatchdog()
    {
        var pgCtl = Path.Combine(_binFolder, "pg_ctl");
        var script =
            $"while [ -d /proc/{Environment.ProcessId} ] && [ -f '{DataFolder}/postmaster.pid' ]; do sleep 1; done; " +
            $"if [ ! -d /proc/{Environment.ProcessId} ]; then '{pgCtl}' -D '{DataFolder}' -m immediate -w stop; rm -rf '{Folder}'; fi";
        var (file, args) = Wrap("setsid", ["bash", "-c", script]);
        _watchdog = Process.Start(StartInfo(file, args));
    }

    private (string File, IReadOnlyList<string> Args) Wrap(string file, IReadOnlyList<string> args) =>
        _asRoot ? ("runuser", ["-u", ServerUser, "--", file, .. args]) : (file, args);

    private async Task MustRunAsync(string file, IReadOnlyList<string> args, bool asServerUser = true)
    {
        (string File, IReadOnlyList<string> Args) command = asServerUser ? Wrap(file, args) : (file, args);
        var result = await RunAsync(command, TimeSpan.FromSeconds(120));
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException(_oneLineFailures
                ? $"'{Path.GetFileName(command.File)} {string.Join(' ', command.Args)}' failed with exit code {result.ExitCode}: {result.Output.Trim()}\n{LogTail()}"
                : $"'{command.File} {string.Join(' ', command.Args)}' failed with exit code {result.ExitCode}:\n{result.Output}\n{LogTail()}");
        }
    }

    private static Task<(int ExitCode, string Output)> RunAsync((string File, IReadOnlyList<string> Args) command, TimeSpan timeout) =>
        RunAsync(command.File, command.Args, timeout);

    private static async Task<(int ExitCode, string Output)> RunAsync(string file, IReadOnlyList<string> args, TimeSpan timeout)
    {
        using var process = Process.Start(StartInfo(file, args)) ?? throw new InvalidOperationException($"Could not start {file}.");
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

    /// <summary>A command with its own standard streams (all redirected) and <c>/</c> as its working folder.</summary>
    private static ProcessStartInfo StartInfo(string file, IReadOnlyList<string> args)
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

        return info;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
