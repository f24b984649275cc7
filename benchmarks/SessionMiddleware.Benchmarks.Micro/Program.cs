// Microbenchmarks (BenchmarkDotNet) of the library's hot parts: serializer, cookie protection, SQLite store.
//   SessionMiddleware.Benchmarks.Micro [--quick] [--results FILE] [--command TEXT] [BenchmarkDotNet args, e.g. --filter *Cookie*]
// Runs in-process (no generated projects); writes the GitHub-flavoured tables to --results.
using System.Globalization;
using System.Text;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Loggers;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using SessionMiddleware.Benchmarks.Micro;

var quick = args.Contains("--quick");
string? results = null;
var command = "build/bench micro";
var rest = new List<string>();
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--quick":
            break;
        case "--results":
            results = args[++i];
            break;
        case "--command":
            command = args[++i];
            break;
        default:
            rest.Add(args[i]);
            break;
    }
}

var job = (quick ? Job.ShortRun : Job.Default.WithWarmupCount(6).WithIterationCount(15).WithLaunchCount(1))
    .WithToolchain(InProcessEmitToolchain.Instance);
var artifacts = Directory.CreateTempSubdirectory("smbench-bdn-");
var config = ManualConfig.CreateMinimumViable()
    .AddJob(job)
    .AddExporter(MarkdownExporter.GitHub)
    .WithArtifactsPath(artifacts.FullName)
    .WithOptions(ConfigOptions.DisableLogFile);

var started = DateTimeOffset.UtcNow;
var summaries = BenchmarkSwitcher
    .FromTypes([typeof(SerializerBenchmarks), typeof(CookieBenchmarks), typeof(StoreBenchmarks), typeof(CleanupBenchmarks)])
    .Run(rest.Count == 0 ? ["--filter", "*"] : [.. rest], config)
    .ToList();

if (results is not null)
{
    var md = new StringBuilder();
    md.AppendLine("# Microbenchmarks (BenchmarkDotNet)");
    md.AppendLine();
    md.AppendLine(CultureInfo.InvariantCulture, $"- Date: {started:yyyy-MM-dd HH:mm} UTC");
    md.AppendLine(CultureInfo.InvariantCulture, $"- Machine: {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}; shared with other work, so expect noise");
    md.AppendLine(CultureInfo.InvariantCulture, $"- Command: `{command}`");
    md.AppendLine(CultureInfo.InvariantCulture, $"- Job: {(quick ? "ShortRun (3 warm-up, 3 iterations)" : "6 warm-up, 15 iterations, 1 launch")}, in-process toolchain; single-threaded calls (no concurrency)");
    md.AppendLine("- StoreBenchmarks: a SQLite file in a temp folder with 10,000 sessions. `Store*` call the library's store; `Raw*` take a load apart: " +
        "`RawOpen` = open a pooled connection and close it, `RawOpenPragmas` = open + the two PRAGMAs the store runs on every open, " +
        "`RawOpenDapperLoad` = open + the store's SELECT through Dapper (no PRAGMAs), `RawPreparedLoad` = that SELECT as a prepared command on a held connection (ADO.NET, no Dapper).");
    md.AppendLine("- CleanupBenchmarks: a cleanup run's deletes, `DeleteExpiredAsync` of 10,000 expired sessions in batches of 100, per row (each iteration creates and expires them first, untimed).");
    var first = true;
    foreach (var summary in summaries)
    {
        md.AppendLine();
        md.AppendLine("## " + string.Join(", ", summary.BenchmarksCases.Select(b => b.Descriptor.Type.Name).Distinct()));
        md.AppendLine();
        var logger = new AccumulationLogger();
        MarkdownExporter.GitHub.ExportToLog(summary, logger);
        md.AppendLine(first ? logger.GetLog().Trim() : TableOnly(logger.GetLog()));
        first = false;
    }

    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(results))!);
    File.WriteAllText(results, md.ToString());
    Console.WriteLine($"wrote {results}");
}

artifacts.Delete(recursive: true);
return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;

// The exported log starts with the environment block in a code fence; keep the table (and the legend lines after it).
static string TableOnly(string log)
{
    var end = log.IndexOf("```", log.IndexOf("```", StringComparison.Ordinal) + 3, StringComparison.Ordinal);
    return (end > 0 ? log[(end + 3)..] : log).Trim();
}
