using System.Diagnostics;

namespace SessionMiddleware.Benchmarks.Server;

/// <summary>Keeps the server bounded in time: it stops after a lifetime, or as soon as the runner that started it is gone.</summary>
internal static class Watchdog
{
    public static async Task RunAsync(WebApplication app, int? parentPid, TimeSpan maxLifetime)
    {
        var started = Stopwatch.StartNew();
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(app.Lifetime.ApplicationStopping))
            {
                if (started.Elapsed > maxLifetime || (parentPid is { } pid && !IsAlive(pid)))
                {
                    await app.StopAsync();
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The server is stopping anyway.
        }
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }
}
