using System.Diagnostics;
using System.Diagnostics.Metrics;
using SessionMiddleware.Storage.Sqlite;

namespace SessionMiddleware.Diagnostics;

/// <summary>
/// Every instrument of the <see cref="ServerSideSessionDiagnostics.MeterName"/> meter, and the calls that record them
/// from the request path, the cleaner and the stores. Tags carry kinds and outcomes only, never an ID or an address.
/// </summary>
internal sealed class SessionMetrics : IWriteBatchObserver
{
    public const string RejectedUnprotectFailed = "unprotect_failed";
    public const string RejectedMalformed = "malformed";
    public const string RejectedUnknownSession = "unknown_session";
    public const string OutcomeCommitted = "committed";
    public const string OutcomeMerged = "merged_after_conflict";
    public const string OutcomeFailed = "failed";

    private readonly Counter<long> _created;
    private readonly Counter<long> _ended;
    private readonly Counter<long> _renewed;
    private readonly Counter<long> _rejected;
    private readonly Counter<long> _rateLimited;
    private readonly Counter<long> _signInsRefused;
    private readonly Counter<long> _commits;
    private readonly Histogram<double> _storeDuration;
    private readonly Counter<long> _rowsDeleted;
    private readonly Histogram<double> _cleanupDuration;
    private readonly Histogram<int> _writeBatchSize;
    private readonly ObservableGauge<long> _stored;
    private long _storedCount = -1;

    public SessionMetrics(IMeterFactory meterFactory, SessionStoreDescription? store = null)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        DbSystemName = (store ?? SessionStoreDescription.Unknown).DbSystemName;
        var meter = meterFactory.Create(ServerSideSessionDiagnostics.MeterName);
        _created = meter.CreateCounter<long>(ServerSideSessionDiagnostics.SessionsCreated, "{session}", "Sessions stored for the first time.");
        _ended = meter.CreateCounter<long>(ServerSideSessionDiagnostics.SessionsEnded, "{session}", "Sessions ended, by reason.");
        _renewed = meter.CreateCounter<long>(ServerSideSessionDiagnostics.SessionsRenewed, "{session}", "Session IDs renewed.");
        _rejected = meter.CreateCounter<long>(ServerSideSessionDiagnostics.CookiesRejected, "{cookie}", "Session cookies not honoured, by reason.");
        _rateLimited = meter.CreateCounter<long>(ServerSideSessionDiagnostics.SessionsRateLimited, "{session}", "New sessions refused by NewSessionLimit (answered 429).");
        _signInsRefused = meter.CreateCounter<long>(ServerSideSessionDiagnostics.SignInsRefused, "{sign-in}", "Sign-ins refused, by reason.");
        _commits = meter.CreateCounter<long>(ServerSideSessionDiagnostics.Commits, "{commit}", "Writes of session data, by outcome.");
        _storeDuration = meter.CreateHistogram<double>(
            ServerSideSessionDiagnostics.StoreOperationDuration,
            "s",
            "Duration of session store calls.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
        _rowsDeleted = meter.CreateCounter<long>(ServerSideSessionDiagnostics.CleanupRowsDeleted, "{session}", "Expired sessions deleted by the cleaner.");
        _cleanupDuration = meter.CreateHistogram<double>(ServerSideSessionDiagnostics.CleanupDuration, "s", "Duration of cleanup runs.");
        _writeBatchSize = meter.CreateHistogram<int>(ServerSideSessionDiagnostics.WriteBatchSize, "{write}", "Writes group-committed in one SQLite transaction.");
        _stored = meter.CreateObservableGauge(ServerSideSessionDiagnostics.SessionsStored, ObserveStored, "{session}", "Live sessions: the cleaner's last count, plus the sessions this process created and minus those it ended since.");
    }

    /// <summary>Whether anyone listens to the stored-sessions gauge, so the cleaner counts only then.</summary>
    public bool StoredGaugeEnabled => _stored.Enabled;

    public void SessionCreated()
    {
        _created.Add(1);
        AdjustStored(1);
    }

    public void SessionsEnded(string reason, long count = 1)
    {
        if (count > 0)
        {
            _ended.Add(count, new KeyValuePair<string, object?>("reason", reason));
            AdjustStored(-count);
        }
    }

    public void SessionRenewed() => _renewed.Add(1);

    public void SessionRateLimited() => _rateLimited.Add(1);

    public void SignInRefused(string reason) => _signInsRefused.Add(1, new KeyValuePair<string, object?>("reason", reason));

    public void CookieRejected(string reason) => _rejected.Add(1, new KeyValuePair<string, object?>("reason", reason));

    public void Commit(string outcome)
    {
        _commits.Add(1, new KeyValuePair<string, object?>("outcome", outcome));
        SessionTracing.CommitOutcome(outcome);
    }

    public void CleanupRun(int rowsDeleted, long startedTimestamp, Exception? error)
    {
        if (rowsDeleted > 0)
        {
            _rowsDeleted.Add(rowsDeleted);
        }

        var elapsed = Stopwatch.GetElapsedTime(startedTimestamp).TotalSeconds;
        if (error is null)
        {
            _cleanupDuration.Record(elapsed);
        }
        else
        {
            _cleanupDuration.Record(elapsed, new KeyValuePair<string, object?>("error.type", ErrorType(error)));
        }
    }

    public void WriteBatch(int size) => _writeBatchSize.Record(size);

    public void StoredCounted(long count) => Volatile.Write(ref _storedCount, count);

    // Between the cleaner's counts the gauge follows this process's creations and ends, so that it does not show the
    // last count (0 at startup) while sessions are created; expiries and other servers' changes wait for the next count.
    private void AdjustStored(long delta)
    {
        var current = Volatile.Read(ref _storedCount);
        while (current >= 0)
        {
            var seen = Interlocked.CompareExchange(ref _storedCount, Math.Max(0, current + delta), current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }

    /// <summary>OpenTelemetry's <c>db.system.name</c> of the registered store, as its registration says.</summary>
    public string DbSystemName { get; }

    /// <summary>Whether anyone listens to the store-call durations, so that a call is timed only then.</summary>
    public bool StoreTimingEnabled => _storeDuration.Enabled;

    /// <summary>Records a store call's duration (<paramref name="error"/> when it failed).</summary>
    public void RecordStore(string operation, long startedTimestamp, Exception? error)
    {
        if (!_storeDuration.Enabled)
        {
            return;
        }

        var tags = new TagList
        {
            { "db.system.name", DbSystemName },
            { "db.operation.name", operation },
        };
        if (error is not null)
        {
            tags.Add("error.type", ErrorType(error));
        }

        _storeDuration.Record(Stopwatch.GetElapsedTime(startedTimestamp).TotalSeconds, tags);
    }

    internal static string ErrorType(Exception error) =>
        error is OperationCanceledException ? "timeout" : error.GetType().FullName ?? error.GetType().Name;

    private IEnumerable<Measurement<long>> ObserveStored()
    {
        var count = Volatile.Read(ref _storedCount);
        return count < 0 ? [] : [new Measurement<long>(count)];
    }
}
