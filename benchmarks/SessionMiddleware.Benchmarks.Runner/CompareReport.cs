using System.Globalization;
using System.Text;

namespace SessionMiddleware.Benchmarks.Runner;

/// <summary>Writes benchmarks/results/latest.md.</summary>
internal static class CompareReport
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>The targets of issue 5: (endpoint, peer, metric, bound). Throughput ratios are "at least", p99 ratios "at most".</summary>
    private static readonly (string Endpoint, string Peer, bool P99, double Bound)[] Targets =
    [
        ("read", "aspnet-memory", false, 0.95),
        ("write", "aspnet-memory", false, 0.8),
        ("new", "aspnet-memory", false, 0.6),
        ("read", "aspnet-redis", false, 2),
        ("write", "aspnet-redis", false, 2),
        ("new", "aspnet-redis", false, 1),
        ("read", "aspnet-sqlite", false, 5),
        ("write", "aspnet-sqlite", false, 5),
        ("new", "aspnet-sqlite", false, 5),
        ("read", "aspnet-memory", true, 1.5),
        ("write", "aspnet-memory", true, 1.5),
    ];

    public static string Markdown(
        RunnerOptions o, Summary s, IReadOnlyList<string> failures, IReadOnlyDictionary<string, string> notMeasured,
        DateTimeOffset started, DateTimeOffset ended, string load, string? sqliteInfo, string? postgresInfo)
    {
        var md = new StringBuilder();
        md.AppendLine("# Benchmark: server-side sessions against the peers");
        md.AppendLine();
        md.AppendLine(Inv, $"- Date: {started:yyyy-MM-dd HH:mm} UTC (took {(ended - started).TotalMinutes:0.0} min)");
        md.AppendLine(Inv, $"- Machine: {Machine.Describe()}; server and load generator share these cores");
        md.AppendLine(Inv, $"- Load average of the machine: {load} (other work shares it: compare ratios within this run, not absolute figures across runs)");
        if (sqliteInfo is not null)
        {
            md.AppendLine(Inv, $"- SQLite in the server process: {sqliteInfo} (one process hosts every configuration, so SQLitePCLRaw is the version NeoSmart.Caching.Sqlite requires)");
        }

        if (postgresInfo is not null)
        {
            md.AppendLine(Inv, $"- PostgreSQL for ours-postgres: {postgresInfo}; a throwaway cluster the runner made with initdb, a fresh database per round");
        }

        md.AppendLine(Inv, $"- Command: `{o.Command}`");
        md.AppendLine(Inv, $"- Method: Kestrel on 127.0.0.1 (Release, logging off), a fresh server process and fresh database per configuration and round; {o.Sessions} sessions created through `/new` first and spread over by the wrk Lua script; `wrk -t{o.Threads} -c{o.Connections} --latency`, {o.WarmupSeconds} s warm-up then {o.DurationSeconds} s measured per endpoint; {o.Rounds} round(s), every other round in reverse order. req/s, p50 and p99 are the means of the rounds (each round's req/s and p99 shown too; the raw windows are in latest.json); errors are non-2xx answers plus socket errors in the measured windows (a missing session or key answers 404); server CPU µs/req is the server process's CPU time (user + system, all threads, from /proc) over the measured window divided by its requests: the server's cost per request, which the load generator sharing the cores does not inflate the way it does latency.");
        md.AppendLine("- Configurations: `none` = same endpoints, no session (the ceiling); `aspnet-*` = ASP.NET Core `AddSession` over " +
            "`AddDistributedMemoryCache`, StackExchangeRedis (local redis-server, no persistence) and NeoSmart.Caching.Sqlite; " +
            "`ours-memory` = this library's middleware over a dictionary in the process (a benchmark-only store: the middleware's own cost, without a database); " +
            "`ours-sqlite` = this library, default options (TouchInterval 60 s); `ours-sqlite-touch0` = TouchInterval 0 (writes last_access on every request); " +
            "`ours-postgres` = this library's PostgreSQL store (`UsePostgreSql`), default options, Npgsql's default pool; " +
            "`ours-sqlite-listened` (only with --only) = `ours-sqlite` with a MeterListener and an ActivityListener on the library's meter and source (the instrumentation's cost when listened to); " +
            "`ours-sqlite-sealed` (only with --only) = `ours-sqlite` with `ProtectData` (each row's data sealed with Data Protection: its cost on every load and write); " +
            "`ours-postgres-2nodes` = two ours-postgres server processes on the one database, the sessions created through the first, " +
            "two wrk instances at once with half the connections each (the same total load, spread over both nodes): req/s is the sum, p50/p99 the slower node's, server CPU both processes' together.");
        md.AppendLine();

        if (failures.Count > 0)
        {
            md.AppendLine("**Failures:**");
            foreach (var f in failures)
            {
                md.AppendLine("- " + f);
            }

            md.AppendLine();
        }

        if (notMeasured.Count > 0)
        {
            md.AppendLine("**Not measured:**");
            foreach (var (config, reason) in notMeasured)
            {
                md.AppendLine($"- {config}: {reason}");
            }

            md.AppendLine();
        }

        md.AppendLine("| endpoint | configuration | req/s | per round | p50 ms | p99 ms | p99 per round | errors | × none | × aspnet-memory | p99 × aspnet-memory | server CPU µs/req |");
        md.AppendLine("| --- | --- | ---: | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |");
        foreach (var endpoint in s.Endpoints)
        {
            var none = s["none", endpoint];
            var memory = s["aspnet-memory", endpoint];
            foreach (var config in s.Configs)
            {
                if (s[config, endpoint] is not { } c)
                {
                    continue;
                }

                var rounds = string.Join(" / ", c.Rounds.Select(r => r.RequestsPerSecond.ToString("0", Inv)));
                var p99s = string.Join(" / ", c.Rounds.Select(r => r.P99Ms.ToString("0.0", Inv)));
                md.AppendLine(Inv,
                    $"| /{endpoint} | {config} | {c.RequestsPerSecond:0} | {rounds} | {c.P50Ms:0.00} | {c.P99Ms:0.00} | {p99s} | {c.Errors} | " +
                    $"{Ratio(c.RequestsPerSecond, none?.RequestsPerSecond)} | {Ratio(c.RequestsPerSecond, memory?.RequestsPerSecond)} | {Ratio(c.P99Ms, memory?.P99Ms)} | {(c.ServerCpuUsPerRequest is { } cpu ? cpu.ToString("0.0", Inv) : "–")} |");
            }

            foreach (var config in notMeasured.Keys)
            {
                md.AppendLine($"| /{endpoint} | {config} | not measured (see above) | | | | | | | | | |");
            }
        }

        md.AppendLine();
        // ours-memory is a yardstick (no database), not something a user runs: it has no targets.
        var ours = s.Configs.Where(c => c.StartsWith("ours-", StringComparison.Ordinal) && c != "ours-memory").ToList();
        if (ours.Count > 0)
        {
            md.AppendLine("## Targets of issue 5 (ratios within this run)");
            md.AppendLine();
            md.AppendLine("| target | " + string.Join(" | ", ours) + " |");
            md.AppendLine("| --- |" + string.Concat(ours.Select(_ => " ---: |")));
            foreach (var (endpoint, peer, p99, bound) in Targets)
            {
                var label = p99
                    ? $"/{endpoint} p99 ≤ {bound.ToString("0.##", Inv)}× {peer}'s"
                    : $"/{endpoint} req/s ≥ {bound.ToString("0.##", Inv)}× {peer}";
                var cells = ours.Select(config =>
                {
                    var mine = s[config, endpoint];
                    var theirs = s[peer, endpoint];
                    if (mine is null || theirs is null)
                    {
                        return "not measured";
                    }

                    var ratio = p99 ? mine.P99Ms / theirs.P99Ms : mine.RequestsPerSecond / theirs.RequestsPerSecond;
                    var met = p99 ? ratio <= bound : ratio >= bound;
                    return $"{ratio.ToString("0.00", Inv)}× {(met ? "met" : "**not met**")}";
                });
                md.AppendLine($"| {label} | " + string.Join(" | ", cells) + " |");
            }

            md.AppendLine();
        }

        PostgresSection(md, s);
        md.AppendLine("![requests per second per configuration and endpoint](latest.png)");
        return md.ToString();
    }

    /// <summary>
    /// Issue 15: the PostgreSQL store against ASP.NET Core's Redis session (req/s ≥ 1.0×, p99 ≤ 1.5× Redis's), the
    /// database's own CPU per request, and two nodes against one.
    /// </summary>
    private static void PostgresSection(StringBuilder md, Summary s)
    {
        var configs = new[] { "aspnet-redis", "ours-postgres", CompareMode.TwoNodes }.Where(c => s.Endpoints.Any(e => s[c, e] is not null)).ToList();
        if (!configs.Any(c => c != "aspnet-redis"))
        {
            return;
        }

        md.AppendLine("## PostgreSQL against aspnet-redis (issue 15: req/s ≥ 1.0×, p99 ≤ 1.5× Redis's)");
        md.AppendLine();
        md.AppendLine("| endpoint | configuration | req/s | × aspnet-redis | p99 ms | p99 × aspnet-redis | server CPU µs/req | database CPU µs/req (PostgreSQL or redis-server) | × one node |");
        md.AppendLine("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var endpoint in s.Endpoints)
        {
            var redis = s["aspnet-redis", endpoint];
            var one = s["ours-postgres", endpoint];
            foreach (var config in configs)
            {
                if (s[config, endpoint] is not { } c)
                {
                    continue;
                }

                var rps = redis is null || config == "aspnet-redis" ? "–" : Met(c.RequestsPerSecond / redis.RequestsPerSecond, c.RequestsPerSecond >= redis.RequestsPerSecond);
                var p99 = redis is null || config == "aspnet-redis" ? "–" : Met(c.P99Ms / redis.P99Ms, c.P99Ms <= 1.5 * redis.P99Ms);
                var database = c.Rounds.All(r => r.DatabaseCpuUsPerRequest is not null) ? c.Rounds.Average(r => r.DatabaseCpuUsPerRequest!.Value).ToString("0.0", Inv) : "–";
                var nodes = config == CompareMode.TwoNodes ? Ratio(c.RequestsPerSecond, one?.RequestsPerSecond) : "";
                md.AppendLine(Inv,
                    $"| /{endpoint} | {config} | {c.RequestsPerSecond:0} | {rps} | {c.P99Ms:0.00} | {p99} | {(c.ServerCpuUsPerRequest is { } cpu ? cpu.ToString("0.0", Inv) : "–")} | {database} | {nodes} |");
            }
        }

        md.AppendLine();
    }

    private static string Met(double ratio, bool met) => $"{ratio.ToString("0.00", Inv)}× {(met ? "met" : "**not met**")}";

    private static string Ratio(double value, double? reference) =>
        reference is { } r && r > 0 ? (value / r).ToString("0.00", Inv) + "×" : "–";
}
