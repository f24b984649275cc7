namespace SessionMiddleware.Benchmarks.Runner;

internal static class CleanupMode
{
    public static Task<int> RunAsync(RunnerOptions options) => Task.FromResult(2);
}
