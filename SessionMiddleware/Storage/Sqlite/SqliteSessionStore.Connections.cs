using Microsoft.Data.Sqlite;

namespace SessionMiddleware.Storage.Sqlite;

/// <summary>The SQLite store's connections and the wrappers every call runs in (a missing table named as such).</summary>
internal sealed partial class SqliteSessionStore
{
    /// <summary>
    /// Runs a write in the next group transaction (see <see cref="SqliteWriteQueue.WriteAsync"/> for
    /// <paramref name="singleStatement"/>); a missing table becomes the error that names the migration.
    /// <paramref name="committed"/> tells the row cache what the committed write changed (every write says it: a write
    /// that changes session rows and says nothing would leave the cache serving them as they were).
    /// </summary>
    private async Task<T> WriteAsync<T>(
        Func<SqliteConnection, SqliteTransaction, CancellationToken, Task<T>> work, bool singleStatement, Action<SqliteRowCache, T> committed, CancellationToken cancellationToken)
    {
        try
        {
            var cache = _rowCache;
            return await _writes.WriteAsync(work, singleStatement, cancellationToken, cache is null ? null : result => committed(cache, result)).ConfigureAwait(false);
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode == SqliteGenericError)
        {
            if (await IsTableMissingAsync().ConfigureAwait(false))
            {
                throw SessionTableSchema.MissingTable(_sql.TableName, ex);
            }

            throw;
        }
    }

    /// <summary>Runs a read on a pooled connection; a missing table becomes the error that names the migration.</summary>
    private async Task<T> ReadAsync<T>(Func<SqliteConnection, Task<T>> read, CancellationToken cancellationToken)
    {
        try
        {
            var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var connectionScope = connection.ConfigureAwait(false);
            return await read(connection).ConfigureAwait(false);
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode == SqliteGenericError)
        {
            if (await IsTableMissingAsync().ConfigureAwait(false))
            {
                throw SessionTableSchema.MissingTable(_sql.TableName, ex);
            }

            throw;
        }
    }

    /// <summary>
    /// A connection outside the pool, closed for good when disposed (the checkpointer's, once a second: an idle pooled
    /// connection would keep the file open between its runs).
    /// </summary>
    private async Task<SqliteConnection> OpenUnpooledAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder(_connectionString) { Pooling = false }.ToString());
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await connection.ExecuteAsync(SqlStatement.Of(_connectionPragmas, cancellationToken: cancellationToken)).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    internal async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);

            // busy_timeout and synchronous belong to the physical connection, which the pool keeps open: set them once.
            if (connection.Handle is { } handle && !_initializedHandles.TryGetValue(handle, out _))
            {
                await connection.ExecuteAsync(SqlStatement.Of(_connectionPragmas, cancellationToken: cancellationToken)).ConfigureAwait(false);
                _initializedHandles.AddOrUpdate(handle, InitializedMarker);
            }

            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// SQLITE_ERROR, which SQLite raises for a missing table among other errors (it has no code of its own): the
    /// catalog then tells whether the table is there.
    /// </summary>
    private const int SqliteGenericError = 1;

    /// <summary>Whether the catalog lacks the session table (false when the database cannot be read at all).</summary>
    private async Task<bool> IsTableMissingAsync()
    {
        try
        {
            var connection = await OpenAsync(CancellationToken.None).ConfigureAwait(false);
            await using var connectionScope = connection.ConfigureAwait(false);
            return !await SessionTableMigrator.TableExistsAsync(connection, _sql).ConfigureAwait(false);
        }
        catch (SqliteException)
        {
            return false;
        }
    }
}
