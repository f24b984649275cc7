using Microsoft.Data.Sqlite;
using SessionMiddleware.Logging;

namespace SessionMiddleware.Storage.Sqlite;

/// <summary>The SQLite store's listings, counts and deletes: the session manager's and the cleaner's calls.</summary>
internal sealed partial class SqliteSessionStore
{
    /// <inheritdoc/>
    public async Task<IReadOnlyList<SessionInfo>> ListByUserAsync(string userId, int limit, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(userId);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        var now = _expiry.UnixNow();
        try
        {
            var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var connectionScope = connection.ConfigureAwait(false);
            var rows = await connection.QueryAsync<SessionInfoRow>(SqlStatement.Of(
                _sql.ListByUser, new { UserId = userId, Now = now, Limit = limit }, cancellationToken: cancellationToken)).ConfigureAwait(false);
            return [.. rows.Select(r => r.ToSessionInfo())];
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

    /// <inheritdoc/>
    public Task<IReadOnlyList<SessionInfo>> QueryAsync(SessionFilter filter, SessionCursor? after, int limit, CancellationToken cancellationToken = default)
    {
        var command = _sql.Query(filter, after, limit, _expiry.Parameters());
        return ReadAsync(connection => command.QuerySessionsAsync(connection, cancellationToken), cancellationToken);
    }

    /// <inheritdoc/>
    public Task<long> CountAsync(SessionFilter filter, CancellationToken cancellationToken = default)
    {
        var command = _sql.Count(filter, _expiry.Parameters());
        return ReadAsync(connection => command.CountAsync(connection, cancellationToken), cancellationToken);
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<SessionLifetime>> DeleteByUserAsync(string userId, byte[]? exceptKey, int maxRows, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(userId);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxRows);

        // One batch is one write in the queue: other requests' writes get in between a large revoke's batches.
        return WriteAsync<IReadOnlyList<SessionLifetime>>(
            async (connection, transaction, token) =>
            {
                var deleted = await connection.QueryAsync(SqlStatement.Of(
                    _sqlite.DeleteByUserBatch, new { UserId = userId, ExceptId = exceptKey, Limit = maxRows }, transaction, cancellationToken: token), SessionLifetimeRow.Read).ConfigureAwait(false);
                await RecordEndsAsync(connection, transaction, deleted, token).ConfigureAwait(false);
                return deleted;
            },
            singleStatement: false,
            committed: ForgetEach,
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<SessionLifetime>> DeleteBySignInAsync(SessionSignInFilter filter, byte[]? exceptKey, int maxRows, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxRows);
        var statement = _sqlite.DeleteBySignInBatch(filter);
        var parameters = SessionSql.SignInFilterParameters(filter, exceptKey, maxRows);
        return WriteAsync<IReadOnlyList<SessionLifetime>>(
            async (connection, transaction, token) =>
            {
                var deleted = await connection.QueryAsync(SqlStatement.Of(statement, parameters, transaction, cancellationToken: token), SessionLifetimeRow.Read).ConfigureAwait(false);
                await RecordEndsAsync(connection, transaction, deleted, token).ConfigureAwait(false);
                return deleted;
            },
            singleStatement: false,
            committed: ForgetEach,
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task<SessionLifetime?> DeleteAsync(byte[] key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        return WriteAsync(
            async (connection, transaction, token) =>
            {
                var deleted = await connection.QuerySingleOrDefaultAsync(SqlStatement.Of(
                    _sql.DeleteReturning, new { Id = key }, transaction, cancellationToken: token), SessionLifetimeRow.Read).ConfigureAwait(false);
                if (deleted is not null)
                {
                    await RecordEndsAsync(connection, transaction, [deleted], token).ConfigureAwait(false);
                }

                return deleted;
            },
            singleStatement: false,
            committed: (cache, _) => cache.Forget(key),
            cancellationToken);
    }

    /// <summary>
    /// Lists expired rows by expiry then key, as the contract says, except in a mass expiry (see <see cref="IsMassExpiryAsync"/>):
    /// then a cleanup run lists them by key. Deleting by expiry dirties a random page of the table for nearly every row (keys
    /// are random); deleting by key empties its pages one after the other, and the writes and the WAL frames per row drop.
    /// The run's first call decides; each next call whose <paramref name="after"/> is the last row of a page listed by key
    /// goes on by key, any other by expiry (a row it skips is deleted by the next run).
    /// </summary>
    /// <inheritdoc/>
    public Task<IReadOnlyList<SessionLifetime>> ListExpiredAsync(SessionLifetime? after, int maxRows, CancellationToken cancellationToken = default)
    {
        var parameters = SessionSql.ListExpiredParameters(after, maxRows, _expiry.UnixNow());
        return ReadAsync<IReadOnlyList<SessionLifetime>>(
            async connection =>
            {
                if (after is null)
                {
                    await WarnOfForeignRowsAsync(connection, parameters.Now, cancellationToken).ConfigureAwait(false);
                }

                var byKey = after is null
                    ? await IsMassExpiryAsync(connection, parameters.Now, cancellationToken).ConfigureAwait(false)
                    : Volatile.Read(ref _listedByKeyUpTo) is { } last && last.AsSpan().SequenceEqual(after.Key);
                var expired = await connection.QueryAsync(SqlStatement.Of(
                    byKey ? _sqlite.ListExpiredByKey : _sqlite.ListExpired, parameters, cancellationToken: cancellationToken), SessionLifetimeRow.Read).ConfigureAwait(false);
                Volatile.Write(ref _listedByKeyUpTo, byKey && expired.Count > 0 ? expired[^1].Key : null);
                return expired;
            },
            cancellationToken);
    }

    /// <summary>
    /// At the start of a cleanup run: logs a warning when expired rows have a key that is not a BLOB. The library never
    /// writes one (a row written by hand or by another program); the cleaner cannot read it as a key and leaves it, and
    /// without this it would do so in silence.
    /// </summary>
    private async Task WarnOfForeignRowsAsync(SqliteConnection connection, long now, CancellationToken cancellationToken)
    {
        var foreign = await connection.ExecuteScalarAsync<long>(SqlStatement.Of(
            _sqlite.CountForeignExpiredUpTo, new { Now = now, Limit = ForeignRowsCountedUpTo }, cancellationToken: cancellationToken)).ConfigureAwait(false);
        if (foreign > 0)
        {
            Log.CleanupForeignRowsLeft(_logger, foreign, ForeignRowsCountedUpTo, _sql.TableName);
        }
    }

    /// <summary>The most rows with a foreign key <see cref="WarnOfForeignRowsAsync"/> counts.</summary>
    private const int ForeignRowsCountedUpTo = 1000;

    /// <summary>The last key of the last page <see cref="ListExpiredAsync"/> listed by key; null after a page by expiry.</summary>
    private byte[]? _listedByKeyUpTo;

    /// <summary>
    /// Whether at least <see cref="SqliteStoreSettings.MassExpiryMinRows"/> rows are expired and they are at least an eighth
    /// of the table (a restart after downtime, a burst of sessions created together): there a page of the table holds
    /// several expired rows, and deleting by key pays. The table is counted only past the first bound, so a run of the
    /// usual few expired rows reads no more than the index entries of that bound.
    /// </summary>
    private async Task<bool> IsMassExpiryAsync(SqliteConnection connection, long now, CancellationToken cancellationToken)
    {
        var bound = _massExpiryMinRows;
        if (bound <= 0 || await connection.ExecuteScalarAsync<long>(SqlStatement.Of(
                _sqlite.CountExpiredUpTo, new { Now = now, Limit = bound }, cancellationToken: cancellationToken)).ConfigureAwait(false) < bound)
        {
            return false;
        }

        var expired = await connection.ExecuteScalarAsync<long>(SqlStatement.Of(_sqlite.CountExpired, new { Now = now }, cancellationToken: cancellationToken)).ConfigureAwait(false);
        var total = await connection.ExecuteScalarAsync<long>(SqlStatement.Of(_sqlite.CountAll, cancellationToken: cancellationToken)).ConfigureAwait(false);
        return expired * MassExpiryShare >= total;
    }

    /// <summary>A mass expiry has at least one expired row in this many (see <see cref="IsMassExpiryAsync"/>).</summary>
    private const int MassExpiryShare = 8;

    /// <inheritdoc/>
    public Task<IReadOnlyList<byte[]>> DeleteExpiredAsync(IReadOnlyList<byte[]> keys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        if (keys.Count == 0)
        {
            return Task.FromResult<IReadOnlyList<byte[]>>([]);
        }

        var now = _expiry.UnixNow();

        // One batch is one write in the queue (one prepared statement run per key, all or none committed): requests'
        // writes get in between the cleaner's batches.
        return WriteAsync<IReadOnlyList<byte[]>>(
            async (connection, transaction, token) =>
            {
                var deleted = new List<byte[]>(keys.Count);
                var command = connection.CreateCommand();
                await using var commandScope = command.ConfigureAwait(false);
                command.Transaction = transaction;
                command.CommandText = _sql.DeleteIfExpired;
                var id = command.Parameters.Add("@Id", SqliteType.Blob);
                command.Parameters.AddWithValue("@Now", now);
                foreach (var key in keys)
                {
                    id.Value = key;
                    if (await command.ExecuteNonQueryAsync(token).ConfigureAwait(false) > 0)
                    {
                        deleted.Add(key);
                    }
                }

                return deleted;
            },
            singleStatement: false,
            committed: static (cache, deleted) =>
            {
                foreach (var key in deleted)
                {
                    cache.Forget(key);
                }
            },
            cancellationToken);
    }
}
