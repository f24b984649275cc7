using System.Globalization;

namespace SessionMiddleware.Benchmarks.Runner;

/// <summary>One measured window of one configuration, endpoint and round.</summary>
internal sealed record Measurement(string Config, string Endpoint, int Round, WrkResult Result);

/// <summary>The main benchmark: every configuration × endpoint, in rounds of alternating order.</summary>
internal static class CompareMode
{
    private static readonly System.Text.Json.JsonSerializerOptions IndentedJson = new() { WriteIndented = true };

    public static async Task<int> RunAsync(RunnerOptions options)
    {
        var started = DateTimeOffset.UtcNow;
        var loadBefore = Machine.LoadAverage();
        string? sqliteInfo = null;
        var measurements = new List<Measurement>();
        var failures = new List<string>();
        var scripts = Directory.CreateTempSubdirectory("smbench-wrk-");
        var notMeasured = new Dictionary<string, string>();
        using var redis = options.Configs.Contains("aspnet-redis") ? await RedisServer.StartAsync(TimeSpan.FromHours(2)) : null;
        PostgresCluster? postgres = null;
        var postgresConfigs = options.Configs.Where(IsPostgres).ToList();
        if (postgresConfigs.Count > 0)
        {
            (postgres, var reason) = await PostgresCluster.TryStartAsync();
            if (postgres is null)
            {
                foreach (var config in postgresConfigs)
                {
                    notMeasured[config] = reason!;
                    Log($"{config} not measured: {reason}");
                }
            }
            else
            {
                Log($"{postgres.Description}, in {postgres.Folder}");
            }
        }

        var configs = options.Configs.Where(c => !notMeasured.ContainsKey(c)).ToList();
        try
        {
            for (var round = 1; round <= options.Rounds; round++)
            {
                var order = round % 2 == 1 ? configs : configs.AsEnumerable().Reverse().ToList();
                foreach (var config in order)
                {
                    try
                    {
                        var (results, info) = await MeasureConfigAsync(options, config, round, redis, postgres, scripts.FullName);
                        measurements.AddRange(results);
                        sqliteInfo ??= info;
                    }
                    catch (Exception ex) when (ex is InvalidOperationException or TimeoutException or HttpRequestException)
                    {
                        var message = $"round {round}, {config}: {ex.Message.Split('\n')[0]}";
                        failures.Add(message);
                        Log("FAILED " + message);
                    }
                }
            }
        }
        finally
        {
            scripts.Delete(recursive: true);
            if (postgres is not null)
            {
                await postgres.DisposeAsync();
            }
        }

        Directory.CreateDirectory(options.ResultsDir);
        var md = Path.Combine(options.ResultsDir, "latest.md");
        var png = Path.Combine(options.ResultsDir, "latest.png");
        // Every measured window, for anyone who wants to recompute the table another way.
        await File.WriteAllTextAsync(Path.Combine(options.ResultsDir, "latest.json"), System.Text.Json.JsonSerializer.Serialize(
            measurements.Select(m => new { m.Config, m.Endpoint, m.Round, m.Result.Requests, m.Result.DurationSeconds, m.Result.RequestsPerSecond, m.Result.P50Ms, m.Result.P90Ms, m.Result.P99Ms, m.Result.MaxMs, m.Result.StatusErrors, m.Result.SocketErrors, m.Result.ServerCpuUsPerRequest, m.Result.DatabaseCpuUsPerRequest }),
            IndentedJson));
        var summary = Summary.From(measurements, options);
        await File.WriteAllTextAsync(md, CompareReport.Markdown(options, summary, failures, notMeasured, started, DateTimeOffset.UtcNow, $"{loadBefore} at the start, {Machine.LoadAverage()} at the end", sqliteInfo, postgres?.Description));
        Chart.RequestsPerSecond(summary, png, $"Sessions: requests/s per endpoint (wrk -t{options.Threads} -c{options.Connections}, {Machine.Now()})");
        Log($"wrote {Path.GetRelativePath(options.RepoRoot, md)}, latest.json and {Path.GetRelativePath(options.RepoRoot, png)}");
        Console.WriteLine();
        Console.WriteLine(File.ReadAllText(md));
        return failures.Count == 0 ? 0 : 1;
    }

    private static async Task<(List<Measurement> Results, string? SqliteInfo)> MeasureConfigAsync(RunnerOptions options, string config, int round, RedisServer? redis, PostgresCluster? postgres, string scripts)
    {
        if (config == "aspnet-redis" && redis is not null)
        {
            await redis.CommandAsync("FLUSHALL");
        }

        // ours-postgres*: a fresh, empty database per round, as the SQLite configurations get a fresh file.
        string? database = null;
        if (IsPostgres(config))
        {
            database = await (postgres ?? throw new InvalidOperationException("no PostgreSQL cluster")).CreateDatabaseAsync("r" + round.ToString(CultureInfo.InvariantCulture));
        }

        try
        {
            // The database's own CPU: PostgreSQL's processes for ours-postgres*, redis-server's for aspnet-redis.
            var databasePid = database is not null ? postgres?.ServerProcessId : config == "aspnet-redis" ? redis?.ProcessId : null;
            return await MeasureServerAsync(options, config, round, redis, database, databasePid, scripts);
        }
        finally
        {
            if (database is not null)
            {
                await postgres!.DropDatabaseAsync(database);
            }
        }
    }

    private static async Task<(List<Measurement> Results, string? SqliteInfo)> MeasureServerAsync(RunnerOptions options, string config, int round, RedisServer? redis, string? postgres, int? postgresPid, string scripts)
    {
        var results = new List<Measurement>();
        // ours-postgres-2nodes: two app processes on the one database, the load spread over both (each wrk instance
        // has half the connections); the sessions are created through the first and used through both.
        var nodes = config == TwoNodes ? 2 : 1;
        var serverConfig = config == TwoNodes ? "ours-postgres" : config;
        var servers = new List<BenchServer>();
        // The nodes share one Data Protection key ring (as real servers behind one name must): the first node makes the
        // key while it creates the sessions, and the second starts after that, so that it reads the same key.
        var keys = nodes > 1 ? Directory.CreateTempSubdirectory("smbench-keys-") : null;
        List<string> extra = [.. postgres is null ? [] : new[] { "--postgres", postgres }, .. keys is null ? [] : new[] { "--keys-dir", keys.FullName }];
        try
        {
            servers.Add(await BenchServer.StartAsync(options, serverConfig, redis?.Endpoint, [.. extra]));
            var server = servers[0];
            var cookies = await Seeder.SeedAsync(server, options.Sessions);
            for (var i = 1; i < nodes; i++)
            {
                servers.Add(await BenchServer.StartAsync(options, serverConfig, redis?.Endpoint, [.. extra]));
            }
            string? info = null;
            if (config.StartsWith("ours-", StringComparison.Ordinal))
            {
                using var http = new HttpClient();
                info = await http.GetStringAsync(server.BaseUrl + "/bench/info");
            }

            foreach (var endpoint in options.Endpoints)
            {
                var script = Wrk.WriteScript(scripts, "/" + endpoint, endpoint == "new" ? null : cookies);
                var urls = servers.Select(s => s.BaseUrl + "/" + endpoint).ToList();
                var warm = await Wrk.RunSpreadAsync(options, urls, script, options.WarmupSeconds);
                // The statistics are read outside the CPU window: their queries are not the servers' work.
                var statsBefore = postgres is null ? null : await PostgresWindowStats.TakeAsync(postgres);
                var cpuBefore = ServersCpuTime(servers);
                var dbBefore = postgresPid is { } pid1 ? Machine.ProcessTreeCpuTime(pid1) : null;
                var r = await Wrk.RunSpreadAsync(options, urls, script, options.DurationSeconds);
                var cpuAfter = ServersCpuTime(servers);
                var dbAfter = postgresPid is { } pid2 ? Machine.ProcessTreeCpuTime(pid2) : null;
                var statsAfter = postgres is null ? null : await PostgresWindowStats.TakeAsync(postgres);
                if (cpuBefore is { } b && cpuAfter is { } a && r.Requests > 0)
                {
                    r = r with { ServerCpuUsPerRequest = (a - b).TotalMicroseconds / r.Requests };
                }

                if (dbBefore is { } db && dbAfter is { } da && r.Requests > 0)
                {
                    r = r with { DatabaseCpuUsPerRequest = (da - db).TotalMicroseconds / r.Requests };
                }

                var database = r.DatabaseCpuUsPerRequest is { } d ? string.Create(CultureInfo.InvariantCulture, $"  {(postgres is null ? "Redis" : "PostgreSQL")} CPU {d,5:0.0} µs/req") : "";
                Log(string.Create(CultureInfo.InvariantCulture,
                    $"round {round} {config,-19} /{endpoint,-5} {r.RequestsPerSecond,9:0} req/s  p50 {r.P50Ms,7:0.00} ms  p99 {r.P99Ms,8:0.00} ms  server CPU {r.ServerCpuUsPerRequest,5:0.0} µs/req{database}  errors {r.Errors} (warm-up {warm.RequestsPerSecond:0} req/s, {warm.Errors} errors)"));
                if (statsBefore is not null && statsAfter is not null)
                {
                    Log($"round {round} {config,-19} /{endpoint,-5} PostgreSQL during the window: {PostgresWindowStats.Describe(statsBefore, statsAfter, r.Requests)}");
                }

                results.Add(new Measurement(config, endpoint, round, r));
            }

            return (results, info);
        }
        finally
        {
            foreach (var server in servers)
            {
                await server.DisposeAsync();
            }

            keys?.Delete(recursive: true);
        }
    }

    /// <summary>The two-node configuration: two ours-postgres servers on one database.</summary>
    public const string TwoNodes = "ours-postgres-2nodes";

    private static bool IsPostgres(string config) => config.StartsWith("ours-postgres", StringComparison.Ordinal);

    /// <summary>The servers' CPU time added up (every server process of the configuration).</summary>
    private static TimeSpan? ServersCpuTime(List<BenchServer> servers)
    {
        var total = TimeSpan.Zero;
        foreach (var server in servers)
        {
            if (Machine.ProcessCpuTime(server.ProcessId) is not { } t)
            {
                return null;
            }

            total += t;
        }

        return total;
    }

    public static void Log(string message) =>
        Console.WriteLine($"[{DateTime.Now:HH:mm:ss}] {message}");
}

/// <summary>The rounds of one configuration and endpoint, combined.</summary>
internal sealed record Cell(string Config, string Endpoint, IReadOnlyList<WrkResult> Rounds)
{
    public double RequestsPerSecond => Rounds.Average(r => r.RequestsPerSecond);

    public double P50Ms => Rounds.Average(r => r.P50Ms);

    public double P99Ms => Rounds.Average(r => r.P99Ms);

    public long Errors => Rounds.Sum(r => r.Errors);

    public long Requests => Rounds.Sum(r => r.Requests);

    /// <summary>The mean of the rounds' server CPU per request (µs), or null when a round did not measure it.</summary>
    public double? ServerCpuUsPerRequest => Rounds.All(r => r.ServerCpuUsPerRequest is not null) ? Rounds.Average(r => r.ServerCpuUsPerRequest!.Value) : null;
}

internal sealed class Summary
{
    private readonly Dictionary<(string, string), Cell> _cells;

    private Summary(Dictionary<(string, string), Cell> cells, IReadOnlyList<string> configs, IReadOnlyList<string> endpoints)
    {
        _cells = cells;
        Configs = configs;
        Endpoints = endpoints;
    }

    public IReadOnlyList<string> Configs { get; }

    public IReadOnlyList<string> Endpoints { get; }

    public Cell? this[string config, string endpoint] => _cells.GetValueOrDefault((config, endpoint));

    public static Summary From(IReadOnlyList<Measurement> measurements, RunnerOptions options)
    {
        var cells = measurements
            .GroupBy(m => (m.Config, m.Endpoint))
            .ToDictionary(g => g.Key, g => new Cell(g.Key.Config, g.Key.Endpoint, [.. g.OrderBy(m => m.Round).Select(m => m.Result)]));
        return new Summary(cells, [.. options.Configs.Where(c => cells.Keys.Any(k => k.Item1 == c))], options.Endpoints);
    }
}
