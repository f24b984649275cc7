namespace SessionMiddleware.PostgreSql;

/// <summary>How the store's queues (<see cref="PostgreSqlWriteQueue"/>, <see cref="PostgreSqlLoadQueue"/>) stop.</summary>
internal static class QueueLoop
{
    /// <summary>How long a stopping queue's loop may take to run what is queued before it is cancelled.</summary>
    public static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a cancelled loop may take to end: Npgsql asks the server to cancel the statement and, when the server
    /// does not answer within its cancellation timeout (2 s by default), breaks the connection.
    /// </summary>
    public static readonly TimeSpan CancelTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Takes no more work (<paramref name="complete"/>), lets <paramref name="loop"/> run what is queued for up to
    /// <paramref name="drainTimeout"/>, then cancels it through <paramref name="stopping"/> (the server does not answer)
    /// and waits for it to end. <paramref name="stopping"/> is disposed only once the loop ended: the loop reads its token.
    /// </summary>
    public static async ValueTask StopAsync(Action complete, Task loop, CancellationTokenSource stopping, TimeSpan drainTimeout)
    {
        complete();
        await loop.WaitAsync(drainTimeout).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (!loop.IsCompleted)
        {
            await stopping.CancelAsync().ConfigureAwait(false);
            await loop.WaitAsync(CancelTimeout).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (loop.IsCompleted)
        {
            // Without a timer, a token source left undisposed (a loop that outlived CancelTimeout) holds nothing to free.
            stopping.Dispose();
        }
    }
}
