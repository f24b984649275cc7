namespace SessionMiddleware.PostgreSql;

/// <summary>How the store's queues (<see cref="PostgreSqlWriteQueue"/>, <see cref="PostgreSqlLoadQueue"/>) stop.</summary>
internal static class QueueLoop
{
    /// <summary>How long a stopping queue's loop may take to run what is queued before it is cancelled.</summary>
    public static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Takes no more work (<paramref name="complete"/>), lets <paramref name="loop"/> run what is queued for up to
    /// <see cref="DrainTimeout"/>, then cancels it through <paramref name="stopping"/> (the server does not answer).
    /// </summary>
    public static async ValueTask StopAsync(Action complete, Task loop, CancellationTokenSource stopping)
    {
        complete();
        try
        {
            await loop.WaitAsync(DrainTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            await stopping.CancelAsync().ConfigureAwait(false);
        }

        stopping.Dispose();
    }
}
