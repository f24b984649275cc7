using System.Globalization;

namespace SessionMiddleware.Benchmarks.Server;

/// <summary>The server's command line.</summary>
internal sealed record ServerSettings(
    string Config,
    int Port,
    string DataDir,
    string? Redis,
    double? TouchIntervalSeconds,
    bool GatedCleanup,
    bool LogErrors)
{
    public static readonly string[] Configs =
        ["none", "aspnet-memory", "aspnet-redis", "aspnet-sqlite", "ours-sqlite", "ours-sqlite-touch0"];

    public static ServerSettings Parse(string[] args)
    {
        string? config = null;
        int? port = null;
        string? dataDir = null;
        string? redis = null;
        double? touch = null;
        var gated = false;
        var logErrors = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--port":
                    port = int.Parse(Next(args, ref i), CultureInfo.InvariantCulture);
                    break;
                case "--data-dir":
                    dataDir = Next(args, ref i);
                    break;
                case "--redis":
                    redis = Next(args, ref i);
                    break;
                case "--touch-interval":
                    touch = double.Parse(Next(args, ref i), CultureInfo.InvariantCulture);
                    break;
                case "--gated-cleanup":
                    gated = true;
                    break;
                case "--log-errors":
                    logErrors = true;
                    break;
                default:
                    if (args[i].StartsWith("--", StringComparison.Ordinal) || config is not null)
                    {
                        throw new ArgumentException($"Unexpected argument '{args[i]}'.");
                    }

                    config = args[i];
                    break;
            }
        }

        if (config is null || port is null)
        {
            throw new ArgumentException(
                "Usage: SessionMiddleware.Benchmarks.Server <config> --port N [--data-dir DIR] [--redis HOST:PORT] " +
                "[--touch-interval SECONDS] [--gated-cleanup] [--log-errors]; config is one of " + string.Join(", ", Configs));
        }

        dataDir ??= Path.Combine(Path.GetTempPath(), "smbench-" + Guid.NewGuid().ToString("N")[..12]);
        return new ServerSettings(config, port.Value, dataDir, redis, touch, gated, logErrors);
    }

    private static string Next(string[] args, ref int i) =>
        ++i < args.Length ? args[i] : throw new ArgumentException($"{args[i - 1]} needs a value.");
}
