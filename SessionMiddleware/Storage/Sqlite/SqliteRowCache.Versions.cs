using Microsoft.Data.Sqlite;
using SessionMiddleware.Logging;

namespace SessionMiddleware.Storage.Sqlite;

/// <summary>The row cache's two readings of <c>PRAGMA data_version</c>: the watch connection's and the writer's.</summary>
internal sealed partial class SqliteRowCache
{
    private const int SqliteBusy = 5, SqliteLocked = 6;

    private long? ReadWatch()
    {
        if (_watchVersion is null)
        {
            return null;
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
            lock (_gate)
            {
                if (_disposed)
                {
                    command.Dispose();
                    connection.Dispose();
                    return false;
                }

                _watch = connection;
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
        _watchVersion?.Dispose();
        _watch?.Dispose();
        Volatile.Write(ref _watchVersion, null);
        _watch = null;
    }
}
