using SessionMiddleware.PostgreSql.ChangeFeed;
using SessionMiddleware.Storage;

namespace SessionMiddleware.PostgreSql;

/// <summary>
/// The PostgreSQL store's statements beyond the shared <see cref="SessionSql"/>: what PostgreSQL does differently
/// (one-statement renewal, batched deletes of a user's rows, cleanup deletes that skip rows other nodes hold), and the
/// notifications of ends and renewals (<see cref="PostgreSqlChangeNotice"/>): sent in the statement's own transaction
/// for the rows it changed, so delivered on commit and never for a change rolled back. The cleaner's deletes notify
/// nothing: every server checks the expiry of the sessions it holds itself.
/// </summary>
internal sealed class PostgreSqlSessionSql
{
    public PostgreSqlSessionSql(SessionSql common)
    {
        var t = common.Table;
        const string live = SessionSql.LiveCondition;
        Channel = PostgreSqlChangeNotice.Channel(common.TableName);
        var notify = $"pg_notify('{Channel}', @Notice)";

        // One statement, so one transaction: the DELETE locks the old row (a concurrent update or renewal of it waits,
        // then finds it gone or changed) and the INSERT takes its creation time and next version.
        // The notification (@Notice, PostgreSqlChangeNotice.Renewed) goes once per old row: none when nothing was renewed.
        Renew =
            $"WITH old AS (DELETE FROM {t} WHERE id = @OldId AND version = @ExpectedVersion AND {live} RETURNING created_at, version), " +
            $"notified AS (SELECT {notify} FROM old) " +
            $"INSERT INTO {t} (id, user_id, data, created_at, last_access, version, ip, user_agent, expires_at, {SessionSql.SignInColumns}) " +
            $"SELECT @NewId, @UserId, @Data, old.created_at, @Now, old.version + 1, @Ip, @UserAgent, {SessionSql.NewExpiry("old.created_at")}, {SessionSql.SignInValues} " +
            "FROM old, notified RETURNING version;";

        // SessionSql.DeleteReturning, notifying the end (@Notice, PostgreSqlChangeNotice.Ended) when a row was deleted.
        DeleteReturning =
            $"WITH d AS (DELETE FROM {t} WHERE id = @Id RETURNING {SessionSql.LifetimeColumns}), " +
            $"notified AS (SELECT {notify} FROM d) " +
            "SELECT d.* FROM d, notified;";

        UpdateMany =
            $"UPDATE {t} AS s SET data = u.data, version = s.version + 1, last_access = u.now, " +
            "expires_at = COALESCE(u.expires_at, CASE WHEN s.created_at + u.absolute < u.now + u.idle THEN s.created_at + u.absolute ELSE u.now + u.idle END) " +
            "FROM unnest($1::bytea[], $2::bytea[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[]) AS u(id, data, expected, expires_at, now, idle, absolute) " +
            "WHERE s.id = u.id AND s.version = u.expected AND s.expires_at >= u.now RETURNING s.id;";

        // Rows locked in the order of their keys, the same on every node: two nodes' batches then never wait for each
        // other in a cycle, whatever the order their statements touch the rows in afterwards. LockRows runs above the
        // sort, so the rows are locked in the sorted order.
        LockKeys = $"SELECT 1 FROM {t} WHERE id = ANY($1) ORDER BY id FOR UPDATE;";

        // The keys of $1 whose rows another transaction holds: those that exist but cannot be locked without waiting.
        // The rows it locks are released when its transaction ends, at once.
        LockedKeys =
            $"WITH free AS (SELECT id FROM {t} WHERE id = ANY($1) FOR UPDATE SKIP LOCKED) " +
            $"SELECT id FROM {t} WHERE id = ANY($1) AND id NOT IN (SELECT id FROM free);";

        InsertMany =
            $"INSERT INTO {t} (id, user_id, data, created_at, last_access, version, ip, user_agent, expires_at) " +
            "SELECT u.id, u.user_id, u.data, u.now, u.now, 1, u.ip, u.user_agent, u.expires_at " +
            "FROM unnest($1::bytea[], $2::text[], $3::bytea[], $4::bigint[], $5::text[], $6::text[], $7::bigint[]) AS u(id, user_id, data, now, ip, user_agent, expires_at);";

        // A batch of a user's rows, live or expired; the caller repeats it until none is left. The CTE is evaluated once,
        // so a batch never deletes more than @Limit rows; it locks them in key order, as the writer's batches do.
        // The ends are notified in chunks of PostgreSqlChangeNotice.KeysPerNotice keys, each payload under PostgreSQL's limit;
        // counting the notifications makes them run (a CTE no one reads is not run).
        DeleteByUserBatch =
            $"WITH batch AS MATERIALIZED (SELECT id FROM {t} WHERE user_id = @UserId AND (@ExceptId::bytea IS NULL OR id <> @ExceptId::bytea) ORDER BY id LIMIT @Limit FOR UPDATE), " +
            $"d AS (DELETE FROM {t} WHERE id IN (SELECT id FROM batch) RETURNING {SessionSql.LifetimeColumns}), " +
            $"notified AS (SELECT pg_notify('{Channel}', 'e,' || string_agg(encode(k.key, 'hex'), ',')) FROM " +
            $"(SELECT d.key, (row_number() OVER () - 1) / {PostgreSqlChangeNotice.KeysPerNotice} AS chunk FROM d) AS k GROUP BY k.chunk) " +
            "SELECT d.* FROM d WHERE (SELECT count(*) FROM notified) >= 0;";

        // As DeleteByUserBatch, by the recorded sign-in (SessionSql.SignInCondition).
        DeleteBySignInBatch = filter =>
            $"WITH batch AS MATERIALIZED (SELECT id FROM {t} WHERE {SessionSql.SignInCondition(filter)} AND (@ExceptId::bytea IS NULL OR id <> @ExceptId::bytea) ORDER BY id LIMIT @Limit FOR UPDATE), " +
            $"d AS (DELETE FROM {t} WHERE id IN (SELECT id FROM batch) RETURNING {SessionSql.LifetimeColumns}), " +
            $"notified AS (SELECT pg_notify('{Channel}', 'e,' || string_agg(encode(k.key, 'hex'), ',')) FROM " +
            $"(SELECT d.key, (row_number() OVER () - 1) / {PostgreSqlChangeNotice.KeysPerNotice} AS chunk FROM d) AS k GROUP BY k.chunk) " +
            "SELECT d.* FROM d WHERE (SELECT count(*) FROM notified) >= 0;";

        // A capped sign-in takes its user's lock for the rest of its transaction: capped sign-ins of one user, on any
        // node, count and end one after another.
        LockUser = "SELECT pg_advisory_xact_lock(hashtextextended(@UserId, 0));";

        // The cleaner's delete of the rows whose ends it has raised. Several nodes clean at once without waiting on each
        // other: the batch locks the rows it deletes, skipping rows another node (or a request) holds; a row used again
        // meanwhile (a node whose clock is behind) is no longer expired and stays.
        DeleteExpiredKeys =
            $"WITH batch AS MATERIALIZED (SELECT id FROM {t} WHERE id = ANY(@Ids) AND expires_at < @Now FOR UPDATE SKIP LOCKED) " +
            $"DELETE FROM {t} WHERE id IN (SELECT id FROM batch) RETURNING id;";
    }

    /// <summary>The statements for the table <paramref name="tableName"/>.</summary>
    internal static PostgreSqlSessionSql For(string tableName) => new(new SessionSql(PostgreSqlDialect.Instance, tableName));

    /// <summary>The channel of the table's notifications (<see cref="PostgreSqlChangeNotice.Channel"/>).</summary>
    public string Channel { get; }

    /// <summary>The renewal; <c>@Notice</c> is its notification.</summary>
    public string Renew { get; }

    /// <summary>Deletes the row <c>@Id</c>, returning its lifetime; <c>@Notice</c> is the notification of its end.</summary>
    public string DeleteReturning { get; }

    /// <summary>
    /// <see cref="SessionSql.Update"/> for several rows at once, its parameters as arrays ($1 keys, $2 data, $3 expected
    /// versions, $4 explicit expiries or nulls, $5 now, $6 idle and $7 absolute timeouts); returns the keys it updated.
    /// </summary>
    public string UpdateMany { get; }

    /// <summary>
    /// <see cref="SessionSql.Insert"/> for several rows at once, its parameters as arrays ($1 keys, $2 user IDs, $3 data,
    /// $4 now, $5 IP addresses, $6 user agents, $7 expiries). One statement: all its rows are stored or none.
    /// </summary>
    public string InsertMany { get; }

    /// <summary>Locks the rows of the keys <c>$1</c> (a <c>bytea[]</c>) in key order: the first statement of a batch of several keys.</summary>
    public string LockKeys { get; }

    /// <summary>Which of the keys <c>$1</c> (a <c>bytea[]</c>) have rows another transaction holds locked.</summary>
    public string LockedKeys { get; }

    public string DeleteByUserBatch { get; }

    public string DeleteExpiredKeys { get; }

    /// <summary>A batch of the rows whose recorded sign-in matches the filter, except <c>@ExceptId</c>, at most <c>@Limit</c>, locked in key order, deleted and notified, returning their lifetimes.</summary>
    public Func<SessionSignInFilter, string> DeleteBySignInBatch { get; }

    /// <summary>Takes the transaction-scoped advisory lock of <c>@UserId</c>.</summary>
    public string LockUser { get; }
}
