// The benchmark driver (run by build/bench): compare (the peers), scale (10k vs 1M stored sessions) and cleanup
// (the cleaner on 1M expired rows under load). See RunnerOptions.Usage.
using SessionMiddleware.Benchmarks.Runner;

RunnerOptions options;
try
{
    options = RunnerOptions.Parse(args);
}
catch (ArgumentException ex)
{
    Console.Error.WriteLine(ex.Message);
    return 2;
}

if (!File.Exists(options.ServerDll))
{
    Console.Error.WriteLine($"The server is not built: {options.ServerDll} (build/bench builds it in Release).");
    return 2;
}

return options.Mode switch
{
    "scale" => await ScaleMode.RunAsync(options),
    "cleanup" => await CleanupMode.RunAsync(options),
    _ => await CompareMode.RunAsync(options),
};
