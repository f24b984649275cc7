using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using static SessionMiddleware.Benchmarks.Runner.CompareMode;

namespace SessionMiddleware.Benchmarks.Runner;

/// <summary>
/// The cleaner on many expired rows (default 1,000,000) while wrk loads /read or /write: the server's cleaner
/// timer is gated (--gated-cleanup) so that the run starts when the runner says; the cleaner's own log event
/// gives the rows deleted and the time it took; wrk runs from just before the cleaner starts until it ends.
/// </summary>
internal static class CleanupMode
{
    private const string Config = "ours-sqlite";
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    private sealed record CleanupRun(string Event, long Count, long? Batches, double ElapsedMs, double AtMs, string Message);

    private sealed record CleanupStatus(List<CleanupRun> Runs);

    private sealed record Outcome(string Endpoint, WrkResult Baseline, WrkResult During, CleanupRun? Run, double WallSeconds, long Left, TimeSpan Fill);

    public static async Task<int> RunAsync(RunnerOptions options)
    {
        var started = DateTimeOffset.UtcNow;
        var endpoints = options.Endpoints.Where(e => e is "read" or "write").ToList();
        var outcomes = new List<Outcome>();
        var limit = TimeSpan.FromSeconds(options.Quick ? 120 : 300);
        var scripts = Directory.CreateTempSubdirectory("smbench-wrk-");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        try
        {
            await using var server = await BenchServer.StartAsync(options, Config, null, "--gated-cleanup", "--log-errors");
            var cookies = await Seeder.SeedAsync(server, options.Sessions);
            foreach (var endpoint in endpoints)
            {
                var fill = await SqliteFiller.InsertAsync(server.SessionsDb, options.ExpiredRows, DateTimeOffset.UtcNow.AddDays(-2));
                Log(string.Create(Inv, $"/{endpoint}: {options.ExpiredRows:N0} expired rows inserted in {fill.TotalSeconds:0.0} s"));
                var script = Wrk.WriteScript(scripts.FullName, "/" + endpoint, cookies);
                var url = server.BaseUrl + "/" + endpoint;
                await Wrk.RunAsync(options, url, script, options.WarmupSeconds);
                var baseline = await Wrk.RunAsync(options, url, script, options.DurationSeconds);
                Log(string.Create(Inv, $"/{endpoint} baseline (cleaner idle): {baseline.RequestsPerSecond:0} req/s  p50 {baseline.P50Ms:0.00} ms  p99 {baseline.P99Ms:0.00} ms"));

                var before = (await Status(http, server)).Runs.Count;
                var wrk = Wrk.Start(options, url, script, (int)limit.TotalSeconds);
                var wall = Stopwatch.StartNew();
                await Task.Delay(1000);
                using (var fire = await http.PostAsync(server.BaseUrl + "/bench/cleanup", null))
                {
                    fire.EnsureSuccessStatusCode();
                }

                CleanupRun? run = null;
                while (wall.Elapsed < limit && !wrk.HasExited)
                {
                    var status = await Status(http, server);
                    if (status.Runs.Count > before)
                    {
                        run = status.Runs[^1];
                        break;
                    }

                    await Task.Delay(200);
                }

                var seconds = wall.Elapsed.TotalSeconds;
                ChildProcesses.Interrupt(wrk);
                var during = await Wrk.FinishAsync(wrk, TimeSpan.FromSeconds(30));
                var left = await SqliteFiller.CountAsync(server.SessionsDb, $"last_access < {DateTimeOffset.UtcNow.AddDays(-1).ToUnixTimeSeconds()}");
                Log(string.Create(Inv, $"/{endpoint} during cleanup: {during.RequestsPerSecond:0} req/s  p50 {during.P50Ms:0.00} ms  p99 {during.P99Ms:0.00} ms  errors {during.Errors}; cleaner: {run?.Message ?? "did not finish"}; expired rows left {left}"));
                if (run is null)
                {
                    // What the server logged (warnings and errors only): why the cleaner did not report.
                    var output = server.Output;
                    Log("the server's last output:\n" + (output.Length > 3000 ? output[^3000..] : output));
                }

                outcomes.Add(new Outcome(endpoint, baseline, during, run, seconds, left, fill));
            }
        }
        finally
        {
            scripts.Delete(recursive: true);
        }

        var md = new StringBuilder();
        md.AppendLine("# Benchmark: the cleaner on expired rows, under load");
        md.AppendLine();
        md.AppendLine(Inv, $"- Date: {started:yyyy-MM-dd HH:mm} UTC (took {(DateTimeOffset.UtcNow - started).TotalMinutes:0.0} min)");
        md.AppendLine(Inv, $"- Machine: {Machine.Describe()}");
        md.AppendLine(Inv, $"- Command: `{options.Command}`");
        md.AppendLine(Inv, $"- Method: `{Config}` with default options except that the cleaner's timer is held back (the server's `--gated-cleanup`: a DI `TimeProvider` whose timer for the cleanup interval ticks on request); {options.Sessions} live sessions; {options.ExpiredRows:N0} expired rows inserted straight into the table (one transaction) before each endpoint. Baseline: {options.WarmupSeconds} s warm-up + {options.DurationSeconds} s of wrk with the rows present and the cleaner idle. During: wrk starts, the cleaner is started 1 s later, wrk is stopped (SIGINT) as soon as the cleaner logs its result, so the window is the cleaner's run plus ~1 s. Rate and time are the cleaner's own figures (its `CleanupCompleted` log event). `wrk -t{options.Threads} -c{options.Connections} --latency`.");
        md.AppendLine();
        md.AppendLine("| endpoint | rows deleted | batches | cleaner time s | rows/s | baseline req/s | during req/s | baseline p99 ms | during p99 ms | p99 ratio (target ≤ 2×) | during p50 ms | errors | expired rows left |");
        md.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var o in outcomes)
        {
            var ratio = o.During.P99Ms / o.Baseline.P99Ms;
            var runText = o.Run is { } r
                ? string.Create(Inv, $"{r.Count:N0} | {r.Batches?.ToString("N0", Inv) ?? "?"} | {r.ElapsedMs / 1000:0.0} | {(r.ElapsedMs > 0 ? r.Count / (r.ElapsedMs / 1000) : 0):N0}")
                : string.Create(Inv, $"not finished in {o.WallSeconds:0} s | | | ");
            md.AppendLine(Inv,
                $"| /{o.Endpoint} | {runText} | {o.Baseline.RequestsPerSecond:0} | {o.During.RequestsPerSecond:0} | {o.Baseline.P99Ms:0.00} | {o.During.P99Ms:0.00} | {ratio:0.00}× {(ratio <= 2 ? "met" : "**not met**")} | {o.During.P50Ms:0.00} | {o.During.Errors + o.Baseline.Errors} | {o.Left:N0} |");
        }

        Directory.CreateDirectory(options.ResultsDir);
        var path = Path.Combine(options.ResultsDir, "cleanup.md");
        await File.WriteAllTextAsync(path, md.ToString());
        Log("wrote " + Path.GetRelativePath(options.RepoRoot, path));
        Console.WriteLine();
        Console.WriteLine(md);
        return outcomes.All(o => o.Run is not null) ? 0 : 1;
    }

    private static async Task<CleanupStatus> Status(HttpClient http, BenchServer server) =>
        await http.GetFromJsonAsync<CleanupStatus>(server.BaseUrl + "/bench/cleanup-status", new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web))
        ?? new CleanupStatus([]);
}
