using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace SessionMiddleware.Tests.Infrastructure;

/// <summary>
/// The demo app as a real process (<c>dotnet exec SessionMiddleware.Demo.dll</c>) on a free loopback port, with its
/// SQLite file and Data Protection key ring in a temp folder of its own. Disposing it kills the process and deletes
/// the folder.
/// </summary>
internal sealed partial class DemoProcess : IAsyncDisposable
{
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(15);

    private readonly StringBuilder _output = new();
    private Process? _process;

    private DemoProcess(string folder)
    {
        Folder = folder;
        DatabasePath = System.IO.Path.Combine(folder, "demo.db");
    }

    /// <summary>The demo's working directory (and HOME), deleted on dispose.</summary>
    public string Folder { get; }

    /// <summary>The SQLite file the demo is told to use on its command line.</summary>
    public string DatabasePath { get; }

    /// <summary>The address the demo printed, with the port actually bound.</summary>
    public Uri BaseAddress { get; private set; } = null!;

    /// <summary>Everything the demo wrote to stdout and stderr so far.</summary>
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

    /// <summary>Starts the demo and waits (up to <see cref="StartTimeout"/>) for its "Demo listening on" line.</summary>
    public static async Task<DemoProcess> StartAsync(string name)
    {
        var folder = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "sm-tests", name + "-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        var demo = new DemoProcess(folder);
        try
        {
            await demo.StartProcessAsync();
            return demo;
        }
        catch
        {
            await demo.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { } process)
        {
            _process = null;
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                }

                using var stopped = new CancellationTokenSource(StopTimeout);
                await process.WaitForExitAsync(stopped.Token);
            }
            catch (Exception ex) when (ex is InvalidOperationException or OperationCanceledException or System.ComponentModel.Win32Exception)
            {
                TestContext.Progress.WriteLine($"The demo process did not stop cleanly: {ex.Message}");
            }
            finally
            {
                process.Dispose();
            }
        }

        if (Directory.Exists(Folder))
        {
            try
            {
                Directory.Delete(Folder, recursive: true);
            }
            catch (IOException ex)
            {
                TestContext.Progress.WriteLine($"Could not delete {Folder}: {ex.Message}");
            }
        }
    }

    private async Task StartProcessAsync()
    {
        var start = new ProcessStartInfo(DotnetHost())
        {
            WorkingDirectory = Folder,
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add("exec");
        start.ArgumentList.Add(LocateDemo());
        start.ArgumentList.Add("--urls");
        start.ArgumentList.Add("http://127.0.0.1:0");
        start.ArgumentList.Add($"--ServerSideSessions:ConnectionString=Data Source={DatabasePath}");
        if (!OperatingSystem.IsWindows())
        {
            // Data Protection keeps its key ring under the home folder: keep it in the temp folder too.
            start.Environment["HOME"] = Folder;
        }

        var listening = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                listening.TrySetException(new InvalidOperationException("The demo closed its output before printing its address."));
                return;
            }

            Record(e.Data);
            if (ListeningLine().Match(e.Data) is { Success: true } match)
            {
                listening.TrySetResult(match.Groups[1].Value);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                Record(e.Data);
            }
        };

        if (!process.Start())
        {
            throw new InvalidOperationException($"Could not start {start.FileName}.");
        }

        _process = process;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        string address;
        try
        {
            address = await listening.Task.WaitAsync(StartTimeout);
        }
        catch (Exception ex) when (ex is TimeoutException or InvalidOperationException)
        {
            throw new InvalidOperationException(
                $"The demo did not print \"Demo listening on ...\" within {StartTimeout.TotalSeconds:0} s ({ex.Message}). Its output:\n{Output}", ex);
        }

        var uri = new Uri(address);
        Assert.That(uri.Host, Is.EqualTo("127.0.0.1"), "the demo listens on the loopback address it was given");
        Assert.That(uri.Port, Is.Not.Zero, "the printed address carries the port actually bound");
        BaseAddress = uri;
    }

    /// <summary>The demo built next to this test project, in the same configuration (Debug or Release).</summary>
    private static string LocateDemo()
    {
        // <repo>/SessionMiddleware.Tests/bin/<Configuration>/<tfm>/SessionMiddleware.Tests.dll
        var testBin = new DirectoryInfo(System.IO.Path.GetDirectoryName(typeof(DemoProcess).Assembly.Location)!);
        var targetFramework = testBin.Name;
        var configuration = testBin.Parent!.Name;
        var repositoryRoot = testBin.Parent.Parent!.Parent!.Parent!.FullName;
        var demo = System.IO.Path.Combine(repositoryRoot, "samples", "SessionMiddleware.Demo", "bin", configuration, targetFramework, "SessionMiddleware.Demo.dll");
        Assert.That(File.Exists(demo), Is.True, $"The demo is not built at {demo}; the test project's reference to it builds it.");
        return demo;
    }

    /// <summary>The dotnet host running this test (or the one on PATH).</summary>
    private static string DotnetHost()
    {
        var fromSdk = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (!string.IsNullOrEmpty(fromSdk) && File.Exists(fromSdk))
        {
            return fromSdk;
        }

        var current = Environment.ProcessPath;
        return current is not null && string.Equals(System.IO.Path.GetFileNameWithoutExtension(current), "dotnet", StringComparison.OrdinalIgnoreCase)
            ? current
            : "dotnet";
    }

    private void Record(string line)
    {
        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    [GeneratedRegex(@"^Demo listening on (\S+)$")]
    private static partial Regex ListeningLine();
}
