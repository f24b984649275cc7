using Microsoft.Data.Sqlite;

namespace SessionMiddleware.Storage.Sqlite;

/// <summary>The SQLite store's capped sign-ins (<see cref="NewSession.UserLimit"/>), inside the write's own savepoint.</summary>
internal sealed partial class SqliteSessionStore
{
    /// <summary>
    /// A capped sign-in of <paramref name="session"/>'s user: the keys of the user's least recently used other sessions
    /// beyond the cap (other than <paramref name="exceptKey"/>, the session signing in), or <see cref="SessionLimitExceededException"/>
    /// before anything is written.
    /// </summary>
    private async Task<IReadOnlyList<byte[]>> KeysOverLimitAsync(
        SqliteConnection connection, SqliteTransaction transaction, NewSession session, byte[] exceptKey, long now, CancellationToken cancellationToken)
    {
        var others = (await connection.QueryAsync<byte[]>(SqlStatement.Of(
            _sql.ListOthersOfUser, new { session.UserId, Now = now, ExceptId = exceptKey }, transaction, cancellationToken: cancellationToken)).ConfigureAwait(false));
        return SessionUserLimits.KeysToEnd(session.UserLimit!, session.UserId!, others);
    }

    /// <summary>The row cache forgets the sessions a write ended.</summary>
    private static void ForgetEach(SqliteRowCache cache, IReadOnlyList<SessionLifetime> ended)
    {
        foreach (var row in ended)
        {
            cache.Forget(row.Key);
        }
    }

    /// <summary>Ends the sessions a capped sign-in displaced (recorded for the other processes, returned for their ends).</summary>
    private async Task<IReadOnlyList<SessionLifetime>> EndAsync(SqliteConnection connection, SqliteTransaction transaction, IReadOnlyList<byte[]> keys, CancellationToken cancellationToken)
    {
        if (keys.Count == 0)
        {
            return [];
        }

        var ended = new List<SessionLifetime>();
        foreach (var key in keys)
        {
            if ((await connection.QuerySingleOrDefaultAsync(SqlStatement.Of(
                _sql.DeleteReturning, new { Id = key }, transaction, cancellationToken: cancellationToken), SessionLifetimeRow.Read).ConfigureAwait(false)) is { } row)
            {
                ended.Add(row);
            }
        }

        await RecordEndsAsync(connection, transaction, ended, cancellationToken).ConfigureAwait(false);
        return ended;
    }
}
