using Microsoft.Data.Sqlite;
using SessionMiddleware.Logging;

namespace SessionMiddleware.Storage.Sqlite;

/// <summary>
/// The row cache's two readings of the data version: the watch's (the WAL index header, or <c>PRAGMA data_version</c> on
/// the watch connection where the header cannot be read) and the writer's (<c>PRAGMA data_version</c>).
/// </summary>
internal sealed partial class SqliteRowCache
{
    private const int SqliteBusy = 5, SqliteLocked = 6;

    /// <summary>The WAL index header of the watch connection; null where it cannot be read (then <see cref="_watchVersion"/> is run).</summary>
    private SqliteWalIndexHeader? _header;

    /// <summary>Whether the watch reads the WAL index header (no lock, no system call) rather than running <c>PRAGMA data_version</c>.</summary>
    internal bool WatchesHeader => _header is not null;

    private long? ReadWatch()
    {
        if (_watchVersion is null)
        {
            return null;
        }

        if (_header is { } header)
        {
            // Null while a writer rewrites the header: this load reads the table, the next one looks again.
            return header.Read();
        }

        try
        {
            return (long)_watchVersion.ExecuteScalar()!;
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode is SqliteBusy or SqliteLocked)
        {
            // The watch does not wait for a lock (busy_timeout 0): this load reads the table, the next one looks again.
            return null;
        }
        catch (SqliteException ex)
        {
            Log.RowCacheWatchFailed(_logger, ex);
            CloseWatch();
            ForgetAll();
            _trusted = Untrusted;
            return null;
        }
    }

    private long? ReadWriterVersion(SqliteConnection connection)
    {
        try
        {
            if (!ReferenceEquals(connection, _writer) || _writerVersion is null)
            {
                // A new writer connection: its version starts anywhere, so the first commit on it empties the cache.
                _writerVersion?.Dispose();
                _writerVersion = connection.CreateCommand();
                _writerVersion.CommandText = "PRAGMA data_version;";
                _writer = connection;
                _writerSeen = Untrusted;
            }

            return (long)_writerVersion.ExecuteScalar()!;
        }
        catch (SqliteException ex)
        {
            Log.RowCacheWatchFailed(_logger, ex);
            _writerVersion?.Dispose();
            _writerVersion = null;
            return null;
        }
    }

    private async Task<bool> OpenWatchAsync(CancellationToken cancellationToken)
    {
        await _opening.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_watchVersion is not null)
            {
                return true;
            }

            SqliteConnection connection;
            try
            {
                connection = await _open(cancellationToken).ConfigureAwait(false);
            }
            catch (SqliteException ex)
            {
                // The load that follows reads the table and reports what is wrong with the file.
                Log.RowCacheWatchFailed(_logger, ex);
                return false;
            }

            var command = connection.CreateCommand();
            command.CommandText = "PRAGMA busy_timeout = 0;";
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);

            command.CommandText = "PRAGMA data_version;";
            var header = ReadDataVersionOnly ? null : SqliteWalIndexHeader.TryOpen(connection);
            Log.RowCacheWatchOpened(_logger, header is null ? "PRAGMA data_version" : "the WAL index header");
            lock (_gate)
            {
                if (_disposed)
                {
                    command.Dispose();
                    connection.Dispose();
                    return false;
                }

                _watch = connection;
                _header = header;
                Volatile.Write(ref _watchVersion, command);
            }

            return true;
        }
        finally
        {
            _opening.Release();
        }
    }

    private void CloseWatch()
    {
        // SQLite's mapping of the header goes with the connection: no read after this.
        _header = null;
        _watchVersion?.Dispose();
        _watch?.Dispose();
        Volatile.Write(ref _watchVersion, null);
        _watch = null;
    }
}
