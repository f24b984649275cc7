using System.Diagnostics;

namespace SessionMiddleware.Benchmarks.Server;

/// <summary>
/// A logger provider that keeps the library's cleaner events (<c>CleanupCompleted</c>, <c>CleanupFailed</c>)
/// with their structured values, so that the cleanup benchmark can read the cleaner's own figures.
/// </summary>
internal sealed class CleanupLogCapture : ILoggerProvider
{
    private readonly Lock _lock = new();
    private readonly List<CleanupRun> _runs = [];
    private readonly long _start = Stopwatch.GetTimestamp();

    public ILogger CreateLogger(string categoryName) => new CaptureLogger(this);

    public void Dispose()
    {
    }

    public CleanupStatus Snapshot()
    {
        lock (_lock)
        {
            return new CleanupStatus([.. _runs]);
        }
    }

    private void Add(CleanupRun run)
    {
        lock (_lock)
        {
            _runs.Add(run);
        }
    }

    public sealed record CleanupRun(string Event, long Count, long? Batches, double ElapsedMs, double AtMs, string Message);

    public sealed record CleanupStatus(IReadOnlyList<CleanupRun> Runs);

    private sealed class CaptureLogger(CleanupLogCapture owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (eventId.Name is not ("CleanupCompleted" or "CleanupFailed"))
            {
                return;
            }

            long count = 0;
            long? batches = null;
            double elapsed = 0;
            if (state is IReadOnlyList<KeyValuePair<string, object?>> values)
            {
                foreach (var (key, value) in values)
                {
                    switch (key)
                    {
                        case "Count":
                            count = Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture);
                            break;
                        case "Batches":
                            batches = Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture);
                            break;
                        case "ElapsedMs":
                            elapsed = Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture);
                            break;
                    }
                }
            }

            owner.Add(new CleanupRun(
                eventId.Name, count, batches, elapsed,
                Stopwatch.GetElapsedTime(owner._start).TotalMilliseconds,
                formatter(state, exception) + (exception is null ? "" : " " + exception.GetType().Name + ": " + exception.Message)));
        }
    }
}
