namespace SessionMiddleware.Concurrency;

/// <summary>A first-come, first-served async mutual exclusion: <c>using (await gate.EnterAsync(token)) { … }</c>.</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "A SemaphoreSlim whose AvailableWaitHandle is never read holds no unmanaged resource.")]
internal sealed class AsyncLock
{
    private readonly SemaphoreSlim _semaphore = new(1, 1);

    // The row the last commit under this lock wrote (small rows only), kept as fields so that a commit allocates
    // nothing for it; read and written only by the holder of the lock.
    private byte[]? _lastKey;
    private byte[]? _lastData;
    private long _lastVersion;
    private DateTimeOffset _lastAccessAt;

    public async ValueTask<Releaser> EnterAsync(CancellationToken cancellationToken)
    {
        await _semaphore.WaitAsync(cancellationToken).ConfigureAwait(false);
        return new Releaser(this);
    }

    /// <summary>Leaves the lock when disposed.</summary>
    public readonly struct Releaser(AsyncLock owner) : IDisposable
    {
        /// <summary>
        /// Remembers the row a commit under this lock wrote (<paramref name="data"/> null: forgets), for the next holder
        /// that loaded an older version of the same session: it merges onto it instead of conflicting and reading it again.
        /// </summary>
        public void Remember(byte[] key, byte[]? data, long version, DateTimeOffset lastAccessAt)
        {
            owner._lastKey = data is null ? null : key;
            owner._lastData = data;
            owner._lastVersion = version;
            owner._lastAccessAt = lastAccessAt;
        }

        /// <summary>The remembered row of <paramref name="key"/> when it is newer than <paramref name="version"/>.</summary>
        public StoredSession? NewerThan(byte[] key, long version, string? userId, DateTimeOffset createdAt) =>
            owner._lastData is { } data && owner._lastVersion > version && owner._lastKey.AsSpan().SequenceEqual(key)
                ? new StoredSession(key, data, owner._lastVersion, userId, createdAt, owner._lastAccessAt)
                : null;

        public void Dispose() => owner._semaphore.Release();
    }
}
