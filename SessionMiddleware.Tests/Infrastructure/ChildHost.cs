using System.Diagnostics;

namespace SessionMiddleware.Tests.Infrastructure;

/// <summary>
/// The test host app (SessionMiddleware.Tests.Host) running as a real child process on 127.0.0.1, on a given
/// SQLite file and Data Protection key folder.
/// </summary>
internal sealed class ChildHost : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);
    private readonly Process _process;

    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _output;

    private ChildHost(Process process, Uri baseAddress, System.Collections.Concurrent.ConcurrentQueue<string> output)
    {
        _process = process;
        BaseAddress = baseAddress;
        _output = output;
    }

    public Uri BaseAddress { get; }

    /// <summary>What the host wrote so far (its console log: warnings and errors).</summary>
    public IReadOnlyList<string> Output => [.. _output];

    public int ProcessId => _process.Id;

    public static async Task<ChildHost> StartAsync(string databasePath, string keysFolder, string? postgres = null, params string[] extraArguments)
    {
        var dll = LocateHostDll();
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(databasePath)!,
        };
        foreach (var arg in new[] { "exec", dll, "--db", databasePath, "--keys", keysFolder })
        {
            start.ArgumentList.Add(arg);
        }

        if (postgres is not null)
        {
            start.ArgumentList.Add("--postgres");
            start.ArgumentList.Add(postgres);
        }

        foreach (var arg in extraArguments)
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start the test host.");
        var listening = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                listening.TrySetException(new InvalidOperationException("The test host exited before listening:\n" + string.Join('\n', output)));
                return;
            }

            output.Enqueue(e.Data);
            if (e.Data.StartsWith("Listening on ", StringComparison.Ordinal))
            {
                listening.TrySetResult(new Uri(e.Data["Listening on ".Length..].Trim()));
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                output.Enqueue(e.Data);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var address = await listening.Task.WaitAsync(StartTimeout);
            return new ChildHost(process, address, output);
        }
        catch
        {
            Kill(process);
            process.Dispose();
            throw;
        }
    }

    /// <summary>SIGKILL: the process gets no chance to flush or shut down.</summary>
    public async Task KillAsync()
    {
        Kill(_process);
        await _process.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process.Dispose();
    }

    private static void Kill(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    private static string LocateHostDll()
    {
        // Tests run from SessionMiddleware.Tests/bin/<Configuration>/net10.0/; the host builds to the same layout.
        var testBin = new DirectoryInfo(AppContext.BaseDirectory);
        var framework = testBin.Name;
        var configuration = testBin.Parent!.Name;
        var root = testBin.Parent!.Parent!.Parent!.Parent!.FullName;
        var dll = Path.Combine(root, "SessionMiddleware.Tests.Host", "bin", configuration, framework, "SessionMiddleware.Tests.Host.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException("Build the solution first: the test host was not found.", dll);
    }
}
