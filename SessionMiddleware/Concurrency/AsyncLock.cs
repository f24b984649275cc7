namespace SessionMiddleware.Concurrency;

/// <summary>A first-come, first-served async mutual exclusion: <c>using (await gate.EnterAsync(token)) { … }</c>.</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "A SemaphoreSlim whose AvailableWaitHandle is never read holds no unmanaged resource.")]
internal sealed class AsyncLock
{
    private readonly SemaphoreSlim _semaphore = new(1, 1);

    // Read and written only by the holder of the lock (through its Releaser).
    private StoredSession? _lastCommitted;

    public async ValueTask<Releaser> EnterAsync(CancellationToken cancellationToken)
    {
        await _semaphore.WaitAsync(cancellationToken).ConfigureAwait(false);
        return new Releaser(this);
    }

    /// <summary>Leaves the lock when disposed.</summary>
    public readonly struct Releaser(AsyncLock owner) : IDisposable
    {
        /// <summary>
        /// The row as the last commit under this lock wrote it (small rows only), for the next holder that loaded an
        /// older version of the same session: it merges onto that instead of conflicting and reading the row again.
        /// </summary>
        public StoredSession? LastCommitted
        {
            get => owner._lastCommitted;
            set => owner._lastCommitted = value;
        }

        public void Dispose() => owner._semaphore.Release();
    }
}
