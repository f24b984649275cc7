using System.Globalization;

namespace SessionMiddleware.Benchmarks.Server;

/// <summary>The server's command line.</summary>
internal sealed record ServerSettings(
    string Config,
    int Port,
    string DataDir,
    string? KeysDir,
    string? Redis,
    string? Postgres,
    double? TouchIntervalSeconds,
    bool GatedCleanup,
    bool LogErrors,
    int? ParentPid,
    int MaxLifetimeSeconds)
{
    public static readonly string[] Configs =
        ["none", "aspnet-memory", "aspnet-redis", "aspnet-sqlite", "ours-memory", "ours-sqlite", "ours-sqlite-touch0", "ours-postgres", "auth-cookie", "ours-sqlite-auth", "ours-sqlite-listened", "ours-sqlite-sealed"];

    public static ServerSettings Parse(string[] args)
    {
        string? config = null;
        int? port = null;
        string? dataDir = null;
        string? keysDir = null;
        string? redis = null;
        string? postgres = null;
        double? touch = null;
        var gated = false;
        var logErrors = false;
        int? parentPid = null;
        var maxLifetime = 3600;
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
                case "--keys-dir":
                    keysDir = Next(args, ref i);
                    break;
                case "--redis":
                    redis = Next(args, ref i);
                    break;
                case "--postgres":
                    postgres = Next(args, ref i);
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
                case "--parent-pid":
                    parentPid = int.Parse(Next(args, ref i), CultureInfo.InvariantCulture);
                    break;
                case "--max-lifetime":
                    maxLifetime = int.Parse(Next(args, ref i), CultureInfo.InvariantCulture);
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
                "Usage: SessionMiddleware.Benchmarks.Server <config> --port N [--data-dir DIR] [--keys-dir DIR] [--redis HOST:PORT] [--postgres CONNECTION-STRING] " +
                "[--touch-interval SECONDS] [--gated-cleanup] [--log-errors] [--parent-pid PID] [--max-lifetime SECONDS]; config is one of " + string.Join(", ", Configs));
        }

        dataDir ??= Path.Combine(Path.GetTempPath(), "smbench-" + Guid.NewGuid().ToString("N")[..12]);
        return new ServerSettings(config, port.Value, dataDir, keysDir, redis, postgres, touch, gated, logErrors, parentPid, maxLifetime);
    }

    private static string Next(string[] args, ref int i) =>
        ++i < args.Length ? args[i] : throw new ArgumentException($"{args[i - 1]} needs a value.");
}
