using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace SessionMiddleware.Benchmarks.Runner;

/// <summary>A redis-server on 127.0.0.1 at a free port, in memory only (no RDB, no AOF), for the aspnet-redis configuration.</summary>
internal sealed class RedisServer : IDisposable
{
    private readonly Process _process;

    private RedisServer(int port, Process process)
    {
        Port = port;
        _process = process;
    }

    public int Port { get; }

    public string Endpoint => $"127.0.0.1:{Port}";

    /// <summary>The process that runs redis-server (timeout(1), its parent): its tree's CPU time is Redis's.</summary>
    public int ProcessId => _process.Id;

    public static async Task<RedisServer> StartAsync(TimeSpan lifetime)
    {
        var port = ChildProcesses.FreePort();
        // timeout(1) bounds its life even if the runner is killed without a chance to clean up.
        var p = ChildProcesses.Start("timeout", [
            ((int)lifetime.TotalSeconds).ToString(CultureInfo.InvariantCulture), "redis-server",
            "--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--protected-mode", "yes",
            "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
        ]);
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        var redis = new RedisServer(port, p);
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromSeconds(20))
        {
            try
            {
                if (await redis.CommandAsync("PING") == "+PONG")
                {
                    return redis;
                }
            }
            catch (SocketException)
            {
            }

            if (p.HasExited)
            {
                break;
            }

            await Task.Delay(100);
        }

        redis.Dispose();
        throw new InvalidOperationException("redis-server did not start (is it installed? build/bench installs it with apt).");
    }

    /// <summary>Sends one inline command and returns the first reply line.</summary>
    public async Task<string> CommandAsync(string command)
    {
        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", Port);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(command + "\r\n"));
        var buffer = new byte[256];
        var n = await stream.ReadAsync(buffer);
        return Encoding.ASCII.GetString(buffer, 0, n).TrimEnd('\r', '\n');
    }

    public void Dispose() => ChildProcesses.Kill(_process);
}
