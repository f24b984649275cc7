using Microsoft.Extensions.Logging.Testing;
using SessionMiddleware.PostgreSql;

namespace SessionMiddleware.Tests.Infrastructure;

/// <summary>
/// What a store's background loops threw while it stopped: the exceptions it logged and those of tasks it let go of
/// (unobserved, surfaced by collecting garbage), with their inner exceptions.
/// </summary>
internal static class StoppedStoreExceptions
{
    /// <summary>Runs <paramref name="stop"/> with a logger for the store and returns every exception logged or left unobserved meanwhile.</summary>
    public static async Task<IReadOnlyList<Exception>> DuringAsync(Func<FakeLogger<PostgreSqlSessionStore>, Task> stop)
    {
        var unobserved = new List<Exception>();
        EventHandler<UnobservedTaskExceptionEventArgs> onUnobserved = (_, e) =>
        {
            lock (unobserved)
            {
                unobserved.Add(e.Exception);
            }
        };
        TaskScheduler.UnobservedTaskException += onUnobserved;
        try
        {
            var logger = new FakeLogger<PostgreSqlSessionStore>();
            await stop(logger);

            // A loop that failed after the store let go of it surfaces here as an unobserved task exception.
            for (var i = 0; i < 3; i++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }

            var logged = logger.Collector.GetSnapshot().Select(r => r.Exception).OfType<Exception>();
            lock (unobserved)
            {
                return logged.Concat(unobserved).SelectMany(Chain).ToList();
            }
        }
        finally
        {
            TaskScheduler.UnobservedTaskException -= onUnobserved;
        }
    }

    private static IEnumerable<Exception> Chain(Exception e) => e is AggregateException a
        ? a.InnerExceptions.SelectMany(Chain).Prepend(e)
        : e.InnerException is { } inner ? Chain(inner).Prepend(e) : [e];
}
