using System.Diagnostics;
using System.Net;
using System.Text;

namespace SessionMiddleware.Benchmarks.Runner;

/// <summary>One run of the benchmark server: a configuration, a port, a fresh data folder; ended and removed on dispose.</summary>
internal sealed class BenchServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private BenchServer(string config, int port, string dataDir, Process process)
    {
        Config = config;
        Port = port;
        DataDir = dataDir;
        _process = process;
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string Config { get; }

    public int Port { get; }

    public string DataDir { get; }

    public string BaseUrl => $"http://127.0.0.1:{Port}";

    public string SessionsDb => Path.Combine(DataDir, "sessions.db");

    /// <summary>Starts the server and waits until /health answers (at most 60 s).</summary>
    public static async Task<BenchServer> StartAsync(RunnerOptions options, string config, string? redis, params string[] extra)
    {
        var port = ChildProcesses.FreePort();
        var dataDir = Path.Combine(Path.GetTempPath(), $"smbench-{config}-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(dataDir);
        List<string> args =
        [
            options.ServerDll, config, "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--data-dir", dataDir, "--parent-pid", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--max-lifetime", "1800",
        ];
        if (redis is not null)
        {
            args.AddRange(["--redis", redis]);
        }

        args.AddRange(extra);
        var server = new BenchServer(config, port, dataDir, ChildProcesses.Start("dotnet", args));
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (server._process.HasExited)
            {
                throw new InvalidOperationException($"The {config} server exited with code {server._process.ExitCode}:\n{server.Output}");
            }

            try
            {
                using var response = await http.GetAsync(server.BaseUrl + "/health");
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return server;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }

            await Task.Delay(100);
        }

        await server.DisposeAsync();
        throw new TimeoutException($"The {config} server did not answer /health within 60 s:\n{server.Output}");
    }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public int ProcessId => _process.Id;

    public async ValueTask DisposeAsync()
    {
        ChildProcesses.Kill(_process);
        _process.Dispose();
        await Task.Delay(100);
        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            if (_output.Length < 64 * 1024)
            {
                _output.AppendLine(line);
            }
        }
    }
}
