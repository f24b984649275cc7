using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace SessionMiddleware.Benchmarks.Runner;

/// <summary>Every process the runner starts, so that all of them are ended however the runner stops.</summary>
internal static partial class ChildProcesses
{
    private static readonly ConcurrentDictionary<int, Process> Running = new();

    static ChildProcesses()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAll();
        Console.CancelKeyPress += (_, e) =>
        {
            KillAll();
            e.Cancel = false;
        };
    }

    public static Process Start(string file, IEnumerable<string> arguments, bool redirect = true)
    {
        var psi = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardOutput = redirect,
            RedirectStandardError = redirect,
        };
        foreach (var a in arguments)
        {
            psi.ArgumentList.Add(a);
        }

        var p = Process.Start(psi) ?? throw new InvalidOperationException($"Could not start {file}.");
        Running[p.Id] = p;
        return p;
    }

    /// <summary>Ends one process (and its children) that this runner started.</summary>
    public static void Kill(Process p)
    {
        try
        {
            if (!p.HasExited)
            {
                p.Kill(entireProcessTree: true);
                p.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        Running.TryRemove(p.Id, out _);
    }

    public static void Forget(Process p) => Running.TryRemove(p.Id, out _);

    private static void KillAll()
    {
        foreach (var p in Running.Values)
        {
            Kill(p);
        }
    }

    /// <summary>Sends SIGINT (wrk prints its summary and exits on it).</summary>
    public static void Interrupt(Process p)
    {
        if (!p.HasExited)
        {
            _ = SysKill(p.Id, 2);
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SysKill(int pid, int signal);

    /// <summary>A loopback port nothing listens on right now.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
