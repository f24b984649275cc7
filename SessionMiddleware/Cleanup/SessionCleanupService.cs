using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Logging.Abstractions;
using SessionMiddleware.Ids;
using SessionMiddleware.Diagnostics;
using SessionMiddleware.Events;
using SessionMiddleware.Logging;

namespace SessionMiddleware.Cleanup;

/// <summary>
/// Deletes expired sessions every <see cref="ServerSideSessionOptions.CleanupInterval"/>, in batches of
/// <see cref="ServerSideSessionOptions.CleanupBatchSize"/> so that no statement holds the write lock for long, raising
/// <see cref="ServerSideSessionEvents.OnEnded"/> for each batch before deleting it (at least once: a run that stops between
/// the two raises the batch again next time). A failure is logged and the next tick tries again. The first run is
/// jittered (see <see cref="FirstRunDelay"/>).
/// </summary>
internal sealed class SessionCleanupService : BackgroundService
{
    private readonly IServerSideSessionStore _store;
    private readonly TimeProvider _timeProvider;
    private readonly ServerSideSessionOptions _options;
    private readonly ILogger<SessionCleanupService> _logger;
    private readonly SessionMetrics? _metrics;
    private readonly CleanupStatus? _status;
    private readonly SessionEvents _events;

    // From the container the store is the instrumented one (InstrumentedSessionStore), which times each call.
    public SessionCleanupService(
        [FromKeyedServices(InstrumentedSessionStore.ServiceKey)] IServerSideSessionStore store,
        TimeProvider timeProvider,
        IOptions<ServerSideSessionOptions> options,
        ILogger<SessionCleanupService> logger,
        SessionMetrics? metrics = null,
        CleanupStatus? status = null,
        SessionEvents? events = null)
    {
        _metrics = metrics;
        _status = status;
        ArgumentNullException.ThrowIfNull(options);
        _events = events ?? new SessionEvents(options.Value.Events, options.Value.AbsoluteTimeout, timeProvider, NullLogger<SessionEvents>.Instance, metrics);
        _store = store;
        _timeProvider = timeProvider;
        _options = options.Value;
        _logger = logger;
    }

    /// <summary>Raised after each run with the number of rows it deleted (for tests and diagnostics).</summary>
    internal event Action<int>? RunCompleted;

    private readonly TaskCompletionSource _timerStarted = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes once the timer runs, so that tests can move a fake clock only after that.</summary>
    internal Task TimerStarted => _timerStarted.Task;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // The first run comes after a random half to whole interval, so that servers started together (several
        // nodes over one PostgreSQL database) do not all clean at the same moment; then every interval.
        var firstRun = FirstRunDelay(_options.CleanupInterval);
        using var timer = new PeriodicTimer(firstRun, _timeProvider);
        Log.CleanupStarted(_logger, _options.CleanupInterval, firstRun);
        _timerStarted.TrySetResult();
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                timer.Period = _options.CleanupInterval;
                var deleted = await RunOnceAsync(stoppingToken).ConfigureAwait(false);
                RunCompleted?.Invoke(deleted);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // The host is stopping.
        }
    }

    /// <summary>A random delay between half the interval and the whole interval (never less than a millisecond).</summary>
    internal static TimeSpan FirstRunDelay(TimeSpan interval) =>
        TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerMillisecond, (long)(interval.Ticks * (0.5 + (Random.Shared.NextDouble() / 2)))));

    /// <summary>
    /// Deletes every expired session, batch by batch: lists a batch, raises each one's end, then deletes those still
    /// expired; returns how many were deleted. Never throws but for cancellation.
    /// </summary>
    internal async Task<int> RunOnceAsync(CancellationToken cancellationToken)
    {
        using var span = SessionTracing.Start("cleanup", _metrics?.DbSystemName ?? SessionStoreDescription.OtherSql);
        var started = Stopwatch.GetTimestamp();
        var total = 0;
        var batches = 0;
        try
        {
            SessionLifetime? after = null;
            while (true)
            {
                var expired = await _store.ListExpiredAsync(after, _options.CleanupBatchSize, cancellationToken).ConfigureAwait(false);
                if (expired.Count == 0)
                {
                    break;
                }

                total += await EndAndDeleteAsync(expired, cancellationToken).ConfigureAwait(false);
                batches++;
                if (expired.Count < _options.CleanupBatchSize)
                {
                    break;
                }

                after = expired[^1];
            }

            await RunSucceededAsync(total, batches, started, span, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex)
        {
            Log.CleanupFailed(_logger, total, Stopwatch.GetElapsedTime(started).TotalMilliseconds, ex);
            _status?.RunEnded(total, ex);
            span?.SetTag(SessionTracing.RowsDeletedTag, total);
            SessionTracing.Failed(span, ex);
            _metrics?.CleanupRun(total, started, ex);
        }

        return total;
    }

    /// <summary>
    /// One batch: raises each expired session's end, then deletes those still expired and counts them by reason;
    /// returns how many were deleted.
    /// </summary>
    private async Task<int> EndAndDeleteAsync(IReadOnlyList<SessionLifetime> expired, CancellationToken cancellationToken)
    {
        // The ends are raised before the delete: a process that dies in between raises them again next run
        // (at least once), never loses one.
        var reasons = new Dictionary<byte[], string>(expired.Count, SessionKeyComparer.Instance);
        foreach (var row in expired)
        {
            var reason = _events.TimeoutReason(row);
            reasons[row.Key] = reason;
            await _events.EndedAsync(row, reason, httpContext: null, cancellationToken, count: false).ConfigureAwait(false);
        }

        var deleted = await _store.DeleteExpiredAsync([.. expired.Select(r => r.Key)], cancellationToken).ConfigureAwait(false);
        foreach (var key in deleted)
        {
            _metrics?.SessionsEnded(reasons[key]);
        }

        if (deleted.Count < expired.Count)
        {
            Log.CleanupBatchPartlyDeleted(_logger, expired.Count, deleted.Count);
        }

        return deleted.Count;
    }

    /// <summary>Records a run that completed: its status, span, metrics (and the stored count, when read) and log.</summary>
    private async Task RunSucceededAsync(int total, int batches, long started, Activity? span, CancellationToken cancellationToken)
    {
        _status?.RunEnded(total, null);
        span?.SetTag(SessionTracing.RowsDeletedTag, total);
        _metrics?.CleanupRun(total, started, null);
        if (_metrics is { StoredGaugeEnabled: true })
        {
            // One count per run, and only while someone reads the gauge: a scrape never reaches the database.
            _metrics.StoredCounted(await _store.CountAsync(SessionFilter.All, cancellationToken).ConfigureAwait(false));
        }

        var elapsedMs = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        if (total == 0)
        {
            Log.CleanupFoundNothing(_logger, elapsedMs);
        }
        else
        {
            Log.CleanupCompleted(_logger, total, batches, elapsedMs);
        }
    }
}
