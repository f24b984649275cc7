using System.Globalization;
using System.Text;
using static SessionMiddleware.Benchmarks.Runner.CompareMode;

namespace SessionMiddleware.Benchmarks.Runner;

/// <summary>
/// /read and /write latency of ours-sqlite with few vs many stored sessions (default 10,000 vs 1,000,000): the
/// rows are written straight into the migrated table, the load spreads over <see cref="SeededSessions"/> sessions
/// created through /new, so that the lookups touch many pages of the index.
/// </summary>
internal static class ScaleMode
{
    private const int SeededSessions = 1024;
    private const string Config = "ours-sqlite";
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static async Task<int> RunAsync(RunnerOptions options)
    {
        var started = DateTimeOffset.UtcNow;
        var endpoints = options.Endpoints.Where(e => e is "read" or "write").ToList();
        var results = new List<(int Size, string Endpoint, int Round, WrkResult Result)>();
        var fills = new List<string>();
        var scripts = Directory.CreateTempSubdirectory("smbench-wrk-");
        try
        {
            for (var round = 1; round <= options.Rounds; round++)
            {
                var order = round % 2 == 1 ? options.ScaleSizes : options.ScaleSizes.Reverse().ToList();
                foreach (var size in order)
                {
                    await using var server = await BenchServer.StartAsync(options, Config, null);
                    var fill = await SqliteFiller.InsertAsync(server.SessionsDb, Math.Max(0, size - SeededSessions), DateTimeOffset.UtcNow);
                    var cookies = await Seeder.SeedAsync(server, SeededSessions);
                    var rows = await SqliteFiller.CountAsync(server.SessionsDb);
                    var note = string.Create(Inv, $"{rows:N0} rows, inserted in {fill.TotalSeconds:0.0} s, file {SqliteFiller.FileBytes(server.SessionsDb) / 1048576.0:0} MiB");
                    fills.Add($"round {round}, {size:N0}: {note}");
                    Log($"round {round} {size:N0} stored sessions: {note}");
                    foreach (var endpoint in endpoints)
                    {
                        var script = Wrk.WriteScript(scripts.FullName, "/" + endpoint, cookies);
                        var url = server.BaseUrl + "/" + endpoint;
                        await Wrk.RunAsync(options, url, script, options.WarmupSeconds);
                        var r = await Wrk.RunAsync(options, url, script, options.DurationSeconds);
                        Log(string.Create(Inv, $"round {round} {size,9:N0} /{endpoint,-5} {r.RequestsPerSecond,8:0} req/s  p50 {r.P50Ms:0.00} ms  p99 {r.P99Ms:0.00} ms  errors {r.Errors}"));
                        results.Add((size, endpoint, round, r));
                    }
                }
            }
        }
        finally
        {
            scripts.Delete(recursive: true);
        }

        var md = new StringBuilder();
        md.AppendLine("# Benchmark: request latency against the number of stored sessions");
        md.AppendLine();
        md.AppendLine(Inv, $"- Date: {started:yyyy-MM-dd HH:mm} UTC (took {(DateTimeOffset.UtcNow - started).TotalMinutes:0.0} min)");
        md.AppendLine(Inv, $"- Machine: {Machine.Describe()}");
        md.AppendLine(Inv, $"- Command: `{options.Command}`");
        md.AppendLine(Inv, $"- Method: `{Config}` (default options); after the server's migration the stored sessions are inserted straight into its table (random 32-byte ids, live timestamps, one transaction); then {SeededSessions} sessions are created through `/new` and the wrk script spreads `/read` and `/write` over them; `wrk -t{options.Threads} -c{options.Connections} --latency`, {options.WarmupSeconds} s warm-up + {options.DurationSeconds} s measured; {options.Rounds} round(s), sizes in alternating order; figures are means of the rounds.");
        md.AppendLine();
        md.AppendLine("| stored sessions | endpoint | req/s | p50 ms | p99 ms | errors |");
        md.AppendLine("| ---: | --- | ---: | ---: | ---: | ---: |");
        var cells = results.GroupBy(r => (r.Size, r.Endpoint)).ToDictionary(g => g.Key, g => g.Select(x => x.Result).ToList());
        foreach (var endpoint in endpoints)
        {
            foreach (var size in options.ScaleSizes)
            {
                if (cells.TryGetValue((size, endpoint), out var rs))
                {
                    md.AppendLine(Inv, $"| {size:N0} | /{endpoint} | {rs.Average(r => r.RequestsPerSecond):0} | {rs.Average(r => r.P50Ms):0.00} | {rs.Average(r => r.P99Ms):0.00} | {rs.Sum(r => r.Errors)} |");
                }
            }
        }

        if (options.ScaleSizes.Count >= 2)
        {
            var small = options.ScaleSizes.Min();
            var large = options.ScaleSizes.Max();
            md.AppendLine();
            md.AppendLine(Inv, $"Ratios {large:N0} / {small:N0} (target: latency within 1.2×):");
            md.AppendLine();
            md.AppendLine("| endpoint | p50 ratio | p99 ratio | req/s ratio | latency target met |");
            md.AppendLine("| --- | ---: | ---: | ---: | --- |");
            foreach (var endpoint in endpoints)
            {
                if (cells.TryGetValue((small, endpoint), out var a) && cells.TryGetValue((large, endpoint), out var b))
                {
                    var p50 = b.Average(r => r.P50Ms) / a.Average(r => r.P50Ms);
                    var p99 = b.Average(r => r.P99Ms) / a.Average(r => r.P99Ms);
                    var rps = b.Average(r => r.RequestsPerSecond) / a.Average(r => r.RequestsPerSecond);
                    md.AppendLine(Inv, $"| /{endpoint} | {p50:0.00}× | {p99:0.00}× | {rps:0.00}× | {(p50 <= 1.2 && p99 <= 1.2 ? "yes" : "**no**")} |");
                }
            }
        }

        md.AppendLine();
        md.AppendLine("Databases: " + string.Join("; ", fills) + ".");
        Directory.CreateDirectory(options.ResultsDir);
        var path = Path.Combine(options.ResultsDir, "scale.md");
        await File.WriteAllTextAsync(path, md.ToString());
        Log("wrote " + Path.GetRelativePath(options.RepoRoot, path));
        Console.WriteLine();
        Console.WriteLine(md);
        return 0;
    }
}
