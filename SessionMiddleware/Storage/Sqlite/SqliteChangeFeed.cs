namespace SessionMiddleware.Storage.Sqlite;

/// <summary>
/// Several processes on one SQLite file: each one reads the changes table (<see cref="SqliteSessionStore"/>'s recent
/// ends and renewals) every <see cref="PollInterval"/>, one indexed range query on its sequence number whatever the number
/// of connections held open, and reports what it finds. A gap (changes pruned before they were read, as after a long
/// pause) makes the listener check everything it holds. The process prunes what is older than
/// <see cref="SqliteSessionStore.ChangeRetention"/> every <see cref="PruneInterval"/>.
/// </summary>
internal sealed class SqliteChangeFeed(SqliteSessionStore store) : ISessionChangeFeed
{
    /// <summary>How often the changes table is read (real time): an end in another process reaches this one's connections within it.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>How often old changes are deleted.</summary>
    public static readonly TimeSpan PruneInterval = TimeSpan.FromMinutes(1);

    /// <summary>The most changes read at once.</summary>
    public const int BatchSize = 1000;

    private long _reads;

    /// <summary>How many times the changes table was read (the feed's whole cost while idle).</summary>
    public long Reads => Interlocked.Read(ref _reads);

    /// <inheritdoc/>
    public async Task ListenAsync(ISessionChangeListener listener, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(listener);
        var last = await store.LastChangeAsync(cancellationToken).ConfigureAwait(false);
        await listener.ResynchronizeAsync(cancellationToken).ConfigureAwait(false);
        var nextPrune = DateTime.UtcNow + PruneInterval;
        using var timer = new PeriodicTimer(PollInterval);
        while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
        {
            last = await ReadAsync(listener, last, cancellationToken).ConfigureAwait(false);
            if (DateTime.UtcNow >= nextPrune)
            {
                nextPrune = DateTime.UtcNow + PruneInterval;
                await store.PruneChangesAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Reports the changes after <paramref name="last"/>; returns the newest one read.</summary>
    private async Task<long> ReadAsync(ISessionChangeListener listener, long last, CancellationToken cancellationToken)
    {
        while (true)
        {
            Interlocked.Increment(ref _reads);
            var changes = await store.ReadChangesAsync(last, BatchSize, cancellationToken).ConfigureAwait(false);
            if (changes.Count == 0)
            {
                return last;
            }

            // Sequence numbers are consecutive as written (a rolled-back write takes its number back): a jump means
            // changes were pruned before this process read them.
            if (changes[0].Seq > last + 1 && last > 0)
            {
                await listener.ResynchronizeAsync(cancellationToken).ConfigureAwait(false);
            }

            foreach (var change in changes)
            {
                if (change.NewId is { } newId)
                {
                    listener.SessionRenewed(change.Id, newId, change.UserId);
                }
                else
                {
                    listener.SessionEnded(change.Id);
                }
            }

            last = changes[^1].Seq;
            if (changes.Count < BatchSize)
            {
                return last;
            }
        }
    }
}
