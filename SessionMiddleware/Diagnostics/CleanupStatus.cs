namespace SessionMiddleware.Diagnostics;

/// <summary>
/// What the cleaner last did, for the health check: when its last run ended, whether it succeeded and how many rows it
/// deleted. A singleton the cleaner updates after each run.
/// </summary>
internal sealed class CleanupStatus(TimeProvider timeProvider)
{
    private Snapshot _last = new(null, true, 0, null);

    /// <summary>When this status began to be kept (the process's start, near enough): the clock a cleaner that never ran is measured from.</summary>
    public DateTimeOffset Since { get; } = timeProvider.GetUtcNow();

    /// <summary>The last run, or a snapshot with no <see cref="Snapshot.At"/> when none has ended yet.</summary>
    public Snapshot Last => Volatile.Read(ref _last);

    /// <summary>Records a run that ended now.</summary>
    /// <param name="rowsDeleted">The rows it deleted (before the failure, for a failed run).</param>
    /// <param name="error">Why it failed, or <see langword="null"/>.</param>
    public void RunEnded(int rowsDeleted, Exception? error) =>
        Volatile.Write(ref _last, new Snapshot(timeProvider.GetUtcNow(), error is null, rowsDeleted, error?.Message));

    /// <summary>One run's outcome.</summary>
    public sealed record Snapshot(DateTimeOffset? At, bool Succeeded, int RowsDeleted, string? Error);
}
