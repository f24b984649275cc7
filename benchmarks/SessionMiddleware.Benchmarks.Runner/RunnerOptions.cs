using System.Globalization;

namespace SessionMiddleware.Benchmarks.Runner;

/// <summary>The runner's command line; every default is the full (non-quick) run.</summary>
internal sealed class RunnerOptions
{
    /// <summary>What a plain run compares.</summary>
    public static readonly string[] DefaultConfigs =
        ["none", "aspnet-memory", "aspnet-redis", "aspnet-sqlite", "ours-memory", "ours-sqlite", "ours-sqlite-touch0", "ours-postgres", "ours-postgres-2nodes"];

    /// <summary>
    /// Every configuration --only can name: with the signed-in pair (cookie authentication alone and on the ticket store),
    /// ours-sqlite with a listener on the library's meter and activity source (the instrumentation's cost), and ours-sqlite
    /// with its rows' data sealed (ProtectData: the cost of Data Protection on every load and write).
    /// </summary>
    public static readonly string[] AllConfigs = [.. DefaultConfigs, "auth-cookie", "ours-sqlite-auth", "ours-sqlite-listened", "ours-sqlite-sealed"];

    public static readonly string[] AllEndpoints = ["read", "write", "new"];

    public string Mode { get; private set; } = "compare";

    public bool Quick { get; private set; }

    public IReadOnlyList<string> Configs { get; private set; } = DefaultConfigs;

    public IReadOnlyList<string> Endpoints { get; private set; } = AllEndpoints;

    public int Rounds { get; private set; } = 2;

    public int WarmupSeconds { get; private set; } = 6;

    public int DurationSeconds { get; private set; } = 10;

    public int Connections { get; private set; } = 32;

    public int Threads { get; private set; } = 1;

    public int Sessions { get; private set; } = 64;

    /// <summary>Stored-session counts compared by the scale mode.</summary>
    public IReadOnlyList<int> ScaleSizes { get; private set; } = [10_000, 1_000_000];

    /// <summary>Expired rows the cleanup mode inserts before each cleaner run.</summary>
    public int ExpiredRows { get; private set; } = 1_000_000;

    public string RepoRoot { get; private set; } = Directory.GetCurrentDirectory();

    /// <summary>Where the reports go: benchmarks/results, or --results DIR (for exploratory runs that must not replace latest.md).</summary>
    public string ResultsDir => _resultsDir ?? Path.Combine(RepoRoot, "benchmarks", "results");

    private string? _resultsDir;

    public string ServerDll { get; private set; } = "";

    /// <summary>The command line to print in the results, as the user typed it (build/bench passes it).</summary>
    public string Command { get; private set; } = "build/bench";

    public static RunnerOptions Parse(string[] args)
    {
        var o = new RunnerOptions();
        int? rounds = null, warmup = null, duration = null;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "compare" or "scale" or "cleanup":
                    o.Mode = args[i];
                    break;
                case "--quick":
                    o.Quick = true;
                    break;
                case "--only":
                    o.Configs = SplitChecked(Next(args, ref i), AllConfigs, "--only");
                    break;
                case "--endpoints":
                    o.Endpoints = SplitChecked(Next(args, ref i), AllEndpoints, "--endpoints");
                    break;
                case "--rounds":
                    rounds = Int(Next(args, ref i));
                    break;
                case "--warmup":
                    warmup = Int(Next(args, ref i));
                    break;
                case "--duration":
                    duration = Int(Next(args, ref i));
                    break;
                case "--connections":
                    o.Connections = Int(Next(args, ref i));
                    break;
                case "--threads":
                    o.Threads = Int(Next(args, ref i));
                    break;
                case "--sessions":
                    o.Sessions = Int(Next(args, ref i));
                    break;
                case "--sizes":
                    o.ScaleSizes = [.. Next(args, ref i).Split(',', StringSplitOptions.RemoveEmptyEntries).Select(Int)];
                    break;
                case "--expired-rows":
                    o.ExpiredRows = Int(Next(args, ref i));
                    break;
                case "--repo-root":
                    o.RepoRoot = Path.GetFullPath(Next(args, ref i));
                    break;
                case "--server-dll":
                    o.ServerDll = Path.GetFullPath(Next(args, ref i));
                    break;
                case "--results":
                    o._resultsDir = Path.GetFullPath(Next(args, ref i));
                    break;
                case "--command":
                    o.Command = Next(args, ref i);
                    break;
                case "-h" or "--help":
                    throw new ArgumentException(Usage);
                default:
                    throw new ArgumentException($"Unknown argument '{args[i]}'.\n{Usage}");
            }
        }

        if (o.Quick)
        {
            o.Rounds = 1;
            o.WarmupSeconds = 2;
            o.DurationSeconds = 3;
        }

        o.Rounds = rounds ?? o.Rounds;
        o.WarmupSeconds = warmup ?? o.WarmupSeconds;
        o.DurationSeconds = duration ?? o.DurationSeconds;
        if (o.ServerDll.Length == 0)
        {
            o.ServerDll = Path.Combine(o.RepoRoot, "benchmarks", "SessionMiddleware.Benchmarks.Server", "bin", "Release", "net10.0",
                "SessionMiddleware.Benchmarks.Server.dll");
        }

        return o;
    }

    public const string Usage =
        "Usage: SessionMiddleware.Benchmarks.Runner [compare|scale|cleanup] [--quick] [--only cfg1,cfg2] [--endpoints read,write,new]\n" +
        "       [--rounds N] [--warmup S] [--duration S] [--connections N] [--threads N] [--sessions N]\n" +
        "       [--sizes 10000,1000000] [--expired-rows N] [--repo-root DIR] [--server-dll PATH] [--command TEXT] [--results DIR]\n" +
        "configurations: " + "none, aspnet-memory, aspnet-redis, aspnet-sqlite, ours-memory, ours-sqlite, ours-sqlite-touch0, ours-postgres, ours-postgres-2nodes";

    private static string Next(string[] args, ref int i) =>
        ++i < args.Length ? args[i] : throw new ArgumentException($"{args[i - 1]} needs a value.");

    private static int Int(string s) => int.Parse(s.Replace("_", "", StringComparison.Ordinal), NumberStyles.Integer, CultureInfo.InvariantCulture);

    private static string[] SplitChecked(string list, string[] known, string option)
    {
        var items = list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var item in items)
        {
            if (!known.Contains(item))
            {
                throw new ArgumentException($"{option}: unknown '{item}'; known: {string.Join(", ", known)}.");
            }
        }

        // Keep the canonical order, so that tables and charts read the same from run to run.
        return [.. known.Where(items.Contains)];
    }
}
