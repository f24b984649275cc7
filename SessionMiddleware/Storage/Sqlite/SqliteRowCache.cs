using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using SessionMiddleware.Logging;

namespace SessionMiddleware.Storage.Sqlite;

/// <summary>
/// The rows this process loaded, kept in memory so that a load of an unchanged row reads no table, and correct with
/// several processes (or store instances) on one SQLite file.
/// </summary>
/// <remarks>
/// <para>
/// Whether anyone committed: the watch, a connection of its own that never writes, reads the header of the file's WAL
/// index in the memory SQLite maps for it (<see cref="SqliteWalIndexHeader"/>: no lock, no system call), which every
/// commit of any connection rewrites, the writer of this process included; where that header cannot be read, it runs
/// <c>PRAGMA data_version</c>, which changes whenever another connection commits. The cache is served only while the
/// watch reads the version it was trusted at (<see cref="_trusted"/>); any commit stops it at once.
/// </para>
/// <para>
/// Which commits were this process's own: <c>PRAGMA data_version</c> on the writer's connection changes only when another
/// connection commits. After each group commit (<see cref="Committed"/>), the watch is read, then the writer's version:
/// when the writer's version did not move since the last group commit, no one else committed in between, so the
/// commits since the trusted version are exactly this process's, each write applies what it changed (an update or a
/// touch rewrites a kept row, every other write forgets the rows it touched, a write that declares nothing empties the
/// cache) and the cache is trusted at the watch's new version. When it moved, the cache is emptied.
/// </para>
/// <para>
/// A load that misses reads the table and adds the row only if the cache is still trusted at the version read before
/// the load, so a row loaded before a commit can never be served after it: the commit changes the version. When the
/// version changed and no commit of this process is between its <c>COMMIT</c> and <see cref="Committed"/>, another
/// connection committed: the cache is emptied and trusted anew at that version.
/// </para>
/// </remarks>
internal sealed partial class SqliteRowCache : IDisposable
{
    private const long Untrusted = -1;

    private readonly object _gate = new();
    private readonly Dictionary<byte[], SessionRow> _rows = new(Ids.SessionKeyComparer.Instance);
    private readonly Queue<byte[]> _order = new();
    private readonly Func<CancellationToken, Task<SqliteConnection>> _open;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _opening = new(1, 1);
    private long _bytes;
    private long _trusted = Untrusted;
    private bool _committing;
    private SqliteConnection? _watch;
    private SqliteCommand? _watchVersion;
    private SqliteConnection? _writer;
    private SqliteCommand? _writerVersion;
    private long _writerSeen;
    private bool _disposed;

    /// <param name="capacity">The most rows kept (<see cref="ServerSideSessionOptions.RowCacheSize"/>).</param>
    /// <param name="maxBytes">The most bytes of session data kept.</param>
    /// <param name="open">Opens the watch connection.</param>
    /// <param name="logger">Where a failing watch is logged.</param>
    public SqliteRowCache(int capacity, long maxBytes, Func<CancellationToken, Task<SqliteConnection>> open, ILogger logger)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        Capacity = capacity;
        MaxBytes = maxBytes;
        _open = open;
        _logger = logger;
    }

    public int Capacity { get; }

    /// <summary>Whether the watch runs <c>PRAGMA data_version</c> even where it could read the WAL index header.</summary>
    public bool ReadDataVersionOnly { get; init; }

    public long MaxBytes { get; }

    /// <summary>The bytes of session data kept now.</summary>
    public long Bytes
    {
        get
        {
            lock (_gate)
            {
                return _bytes;
            }
        }
    }

    /// <summary>Loads answered from memory (for tests).</summary>
    public long Hits { get; private set; }

    /// <summary>How many rows are kept now.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _rows.Count;
            }
        }
    }

    /// <summary>
    /// The kept row of <paramref name="key"/> when no one committed since it was trusted; otherwise null, with the
    /// version to pass to <see cref="Add"/> after loading the row from the table.
    /// </summary>
    public async ValueTask<(SessionRow? Row, long Version)> GetAsync(byte[] key, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _watchVersion) is null && !await OpenWatchAsync(cancellationToken).ConfigureAwait(false))
        {
            return (null, Untrusted);
        }

        var taken = false;
        try
        {
            // A load never queues behind another one's reading of the version (or behind the writer applying a commit):
            // it reads the table instead, on the held load connections, which run side by side.
            Monitor.TryEnter(_gate, ref taken);
            if (!taken || ReadWatch() is not { } version)
            {
                return (null, Untrusted);
            }

            if (version != _trusted)
            {
                if (_committing)
                {
                    // This process's own commit, not yet applied: a miss, without emptying what it is about to update.
                    return (null, Untrusted);
                }

                ForgetAll();
                _trusted = version;
            }

            var row = _rows.GetValueOrDefault(key);
            if (row is not null)
            {
                Hits++;
            }

            return (row, version);
        }
        finally
        {
            if (taken)
            {
                Monitor.Exit(_gate);
            }
        }
    }

    /// <summary>Keeps a row loaded from the table, if no one committed since <paramref name="version"/> was read.</summary>
    public void Add(byte[] key, SessionRow row, long version)
    {
        lock (_gate)
        {
            if (version == Untrusted || version != _trusted || _disposed)
            {
                return;
            }

            // A copy of the caller's key: what is kept must not change under the dictionary.
            Put((byte[])key.Clone(), row);
        }
    }

    /// <summary>The writer is about to commit a group transaction: a changed version is its own until <see cref="Committed"/>.</summary>
    public void Committing()
    {
        lock (_gate)
        {
            _committing = true;
        }
    }

    /// <summary>
    /// After a group commit on <paramref name="connection"/>: applies what each write of <paramref name="batch"/> that did not
    /// fail changed, when no other connection committed since the last group commit; empties the cache otherwise.
    /// </summary>
    public void Committed(SqliteConnection connection, IReadOnlyList<SqliteWriteOperation> batch)
    {
        lock (_gate)
        {
            _committing = false;
            var watch = ReadWatch();
            var writer = ReadWriterVersion(connection);
            if (watch is null || writer is null || writer != _writerSeen)
            {
                // Another connection committed (or it cannot be told): nothing kept is known to be current.
                _writerSeen = writer ?? Untrusted;
                ForgetAll();
                _trusted = Untrusted;
                return;
            }

            foreach (var operation in batch)
            {
                if (!operation.Failed && !operation.ApplyCommitted())
                {
                    ForgetAll();
                }
            }

            _trusted = watch.Value;
        }
    }

    /// <summary>A group commit failed or its outcome is unknown: nothing kept is known to be current.</summary>
    public void Abandoned()
    {
        lock (_gate)
        {
            _committing = false;
            ForgetAll();
            _trusted = Untrusted;
        }
    }

    /// <summary>A committed update of <paramref name="key"/>'s data (inside <see cref="Committed"/>): a kept row takes it.</summary>
    public void Updated(byte[] key, byte[] data, long version, ExpiryParameters expiry, long? expiresAt)
    {
        if (_rows.TryGetValue(key, out var kept))
        {
            var row = kept.Clone();
            row.Data = (byte[])data.Clone(); // the caller's buffer is the caller's
            row.Version = version;
            row.LastAccess = expiry.Now;
            row.ExpiresAt = expiresAt ?? expiry.DefaultExpiresAt(kept.CreatedAt);
            Put(key, row);
        }
    }

    /// <summary>A committed touch of <paramref name="key"/> (inside <see cref="Committed"/>): a kept row takes it.</summary>
    public void Touched(byte[] key, ExpiryParameters expiry, long? expiresAt)
    {
        if (_rows.TryGetValue(key, out var kept))
        {
            var row = kept.Clone();
            row.LastAccess = expiry.Now;
            row.ExpiresAt = expiresAt ?? expiry.DefaultExpiresAt(kept.CreatedAt);
            Put(key, row);
        }
    }

    /// <summary>Rows a committed write deleted, moved or could not update (inside <see cref="Committed"/>).</summary>
    public void Forget(byte[] key)
    {
        if (_rows.Remove(key, out var row))
        {
            _bytes -= row.Data?.Length ?? 0;
        }
    }

    /// <summary>Closes the watch and empties the cache (tests that need the file with no connection open, and shutdown).</summary>
    public void Release()
    {
        lock (_gate)
        {
            CloseWatch();
            ForgetAll();
            _trusted = Untrusted;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            CloseWatch();
            ForgetAll();
            _writerVersion?.Dispose();
            _writerVersion = null;
            _writer = null;
        }
    }

    private void Put(byte[] key, SessionRow row)
    {
        var size = row.Data?.Length ?? 0;
        if (size > MaxBytes / 4)
        {
            Forget(key);
            return;
        }

        if (_rows.Remove(key, out var old))
        {
            _bytes -= old.Data?.Length ?? 0;
        }
        else
        {
            _order.Enqueue(key);
        }

        // First in, first out: the oldest keys go first (a key already forgotten is skipped).
        while ((_rows.Count >= Capacity || _bytes + size > MaxBytes) && _order.TryDequeue(out var oldest))
        {
            Forget(oldest);
        }

        _rows[key] = row;
        _bytes += size;
        if (_order.Count > 2 * Capacity)
        {
            // Keys forgotten by writes stay in the queue until they come out of it: rebuild it from the kept keys.
            _order.Clear();
            foreach (var kept in _rows.Keys)
            {
                _order.Enqueue(kept);
            }
        }
    }

    private void ForgetAll()
    {
        _rows.Clear();
        _order.Clear();
        _bytes = 0;
    }
}
