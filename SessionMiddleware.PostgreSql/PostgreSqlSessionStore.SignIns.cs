using Npgsql;
using NpgsqlTypes;
using SessionMiddleware.PostgreSql.ChangeFeed;
using SessionMiddleware.Storage;

namespace SessionMiddleware.PostgreSql;

/// <summary>
/// Capped sign-ins (<see cref="NewSession.UserLimit"/>): each runs in a transaction of its own, outside the group commit,
/// under its user's advisory lock, so that simultaneous sign-ins of one user on every node count and end one after another.
/// </summary>
internal sealed partial class PostgreSqlSessionStore
{
    /// <summary>
    /// Inserts (<paramref name="oldKey"/> null) or renews to <paramref name="session"/> under its user's cap: under the user's
    /// lock, counts the user's other live sessions, refuses (<see cref="SessionLimitExceededException"/>, nothing written) or
    /// picks the least recently used beyond the cap, locks them and the renewed row in key order (as the group commit
    /// does, so the two never wait for each other in a cycle), writes the sign-in, and ends them, in one transaction.
    /// </summary>
    private Task<SessionUpdateResult> SignInCappedAsync(
        NewSession session, byte[]? oldKey, long expectedVersion, Func<NpgsqlBatchCommand> statement, CancellationToken cancellationToken)
    {
        var now = _expiry.UnixNow();
        return RunAsync(
            async (connection, token) =>
            {
                var transaction = await connection.BeginTransactionAsync(token).ConfigureAwait(false);
                await using var transactionScope = transaction.ConfigureAwait(false);
                await connection.ExecuteAsync(SqlStatement.Of(_pg.LockUser, new { session.UserId }, transaction, cancellationToken: token)).ConfigureAwait(false);
                var others = (await connection.QueryAsync<byte[]>(SqlStatement.Of(
                    _sql.ListOthersOfUser, new { session.UserId, Now = now, ExceptId = oldKey ?? session.Key }, transaction, cancellationToken: token)).ConfigureAwait(false));
                var overLimit = SessionUserLimits.KeysToEnd(session.UserLimit!, session.UserId!, others);
                await LockInKeyOrderAsync(connection, transaction, oldKey is null ? overLimit : [.. overLimit, oldKey], token).ConfigureAwait(false);

                var batch = new NpgsqlBatch(connection, transaction) { BatchCommands = { statement() } };
                await using (batch.ConfigureAwait(false))
                {
                    var written = oldKey is null
                        ? await batch.ExecuteNonQueryAsync(token).ConfigureAwait(false) > 0
                        : await batch.ExecuteScalarAsync(token).ConfigureAwait(false) is long;
                    if (!written)
                    {
                        // The renewed row is gone or changed: nothing of this sign-in is kept, no other session ends.
                        await transaction.RollbackAsync(token).ConfigureAwait(false);
                        return await ResultAsync(connection, oldKey!, 0, expectedVersion, now, token).ConfigureAwait(false);
                    }
                }

                var displaced = new List<SessionLifetime>();
                foreach (var key in overLimit)
                {
                    if ((await connection.QuerySingleOrDefaultAsync(SqlStatement.Of(
                        _pg.DeleteReturning, new { Id = key, Notice = PostgreSqlChangeNotice.Ended(key) }, transaction, cancellationToken: token), SessionLifetimeRow.Read).ConfigureAwait(false)) is { } row)
                    {
                        displaced.Add(row);
                    }
                }

                await transaction.CommitAsync(token).ConfigureAwait(false);
                return new SessionUpdateResult(SessionUpdateStatus.Committed, expectedVersion + 1) { Displaced = displaced };
            },
            cancellationToken);
    }

    private async Task LockInKeyOrderAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<byte[]> keys, CancellationToken cancellationToken)
    {
        if (keys.Count == 0)
        {
            return;
        }

        var command = new NpgsqlCommand(_pg.LockKeys, connection, transaction)
        {
            Parameters = { new NpgsqlParameter { Value = keys.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea } },
        };
        await using (command.ConfigureAwait(false))
        {
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<SessionLifetime>> DeleteBySignInAsync(SessionSignInFilter filter, byte[]? exceptKey, int maxRows, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxRows);
        var statement = _pg.DeleteBySignInBatch(filter);
        var parameters = SessionSql.SignInFilterParameters(filter, exceptKey, maxRows);
        return RunAsync<IReadOnlyList<SessionLifetime>>(
            async (connection, token) =>
            {
                return await connection.QueryAsync(SqlStatement.Of(statement, parameters, cancellationToken: token), SessionLifetimeRow.Read).ConfigureAwait(false);
            },
            cancellationToken);
    }
}
