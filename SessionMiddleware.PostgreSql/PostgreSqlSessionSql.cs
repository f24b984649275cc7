using System.Buffers.Binary;
using System.Data.Common;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Dapper;
using SessionMiddleware.Storage;

namespace SessionMiddleware.PostgreSql;

/// <summary>
/// PostgreSQL's types, catalog query, index names and migration lock. Unqualified names resolve through the
/// connection's <c>search_path</c>: the tables live in <c>current_schema()</c>.
/// </summary>
internal sealed class PostgreSqlDialect : SessionSqlDialect
{
    /// <summary>PostgreSQL truncates longer identifiers (NAMEDATALEN - 1).</summary>
    private const int MaxIdentifierLength = 63;

    public static readonly PostgreSqlDialect Instance = new();

    public override string BinaryType => "bytea";

    public override string TextType => "text";

    public override string Int64Type => "bigint";

    public override string Int32Type => "integer";

    public override string SelectColumns =>
        """
        SELECT c.column_name AS Name, c.data_type AS Type,
               CASE WHEN c.is_nullable = 'NO' THEN 1 ELSE 0 END AS NotNullFlag,
               COALESCE((SELECT k.ordinal_position
                         FROM information_schema.table_constraints tc
                         JOIN information_schema.key_column_usage k
                           ON k.constraint_schema = tc.constraint_schema AND k.constraint_name = tc.constraint_name
                          AND k.table_schema = tc.table_schema AND k.table_name = tc.table_name
                         WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = c.table_schema
                           AND tc.table_name = c.table_name AND k.column_name = c.column_name), 0) AS Pk
        FROM information_schema.columns c
        WHERE c.table_schema = current_schema() AND c.table_name = @TableName
        ORDER BY c.ordinal_position;
        """;

    // Partitioned tables and their partitioned indexes included (relkind 'p' and 'I').
    public override string SelectIndexNames =>
        """
        SELECT i.relname
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = current_schema() AND t.relname = @TableName;
        """;

    /// <summary>
    /// <c>ix_{table}_{column}</c>, or, when that is longer than PostgreSQL keeps, the table name shortened and a hash of
    /// it added, so that the three indexes of a long table name never collide after truncation.
    /// </summary>
    public override string IndexName(string tableName, string column) => Identifier("ix", tableName, column);

    public override string SelectTriggerNames =>
        """
        SELECT tg.tgname
        FROM pg_trigger tg
        JOIN pg_class t ON t.oid = tg.tgrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = current_schema() AND t.relname = @TableName AND NOT tg.tgisinternal;
        """;

    public override IReadOnlyList<string> ExpiryTriggerNames(string tableName) =>
        [Identifier("tr", tableName, "expires_at_insert"), Identifier("tr", tableName, "expires_at_update")];

    /// <summary>
    /// One BEFORE trigger function per table (its name is schema-wide) and two triggers, each created only when its
    /// trigger is missing. The triggers' WHEN conditions are checked without calling the function, so writes of this
    /// library, which always set expires_at, cost no function call.
    /// </summary>
    public override string CreateExpiryTriggers(string tableName, long idleSeconds, long absoluteSeconds)
    {
        var t = Quote(tableName);
        var names = ExpiryTriggerNames(tableName);
        var function = Quote(Identifier("fn", tableName, "expires_at"));
        var idle = idleSeconds.ToString(CultureInfo.InvariantCulture);
        var absolute = absoluteSeconds.ToString(CultureInfo.InvariantCulture);
        var exists = "EXISTS (SELECT 1 FROM pg_trigger tg JOIN pg_class t ON t.oid = tg.tgrelid JOIN pg_namespace n ON n.oid = t.relnamespace " +
            $"WHERE n.nspname = current_schema() AND t.relname = '{tableName}' AND tg.tgname = ";
        return
            $"""
            DO $do$
            BEGIN
              IF NOT {exists}'{names[0]}') OR NOT {exists}'{names[1]}') THEN
                CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $fn$
                BEGIN
                  NEW.expires_at := LEAST(NEW.last_access + {idle}, NEW.created_at + {absolute});
                  RETURN NEW;
                END
                $fn$;
              END IF;
              IF NOT {exists}'{names[0]}') THEN
                CREATE TRIGGER {Quote(names[0])} BEFORE INSERT ON {t} FOR EACH ROW
                  WHEN (NEW.expires_at IS NULL OR NEW.expires_at = 0) EXECUTE FUNCTION {function}();
              END IF;
              IF NOT {exists}'{names[1]}') THEN
                CREATE TRIGGER {Quote(names[1])} BEFORE UPDATE OF last_access ON {t} FOR EACH ROW
                  WHEN (NEW.expires_at = OLD.expires_at AND NEW.last_access > OLD.last_access AND OLD.expires_at = OLD.last_access + {idle})
                  EXECUTE FUNCTION {function}();
              END IF;
            END
            $do$;
            """;
    }

    /// <summary>
    /// <c>{prefix}_{table}_{suffix}</c>, or, when that is longer than PostgreSQL keeps, the table name shortened and a
    /// hash of it added, so that the names of a long table name never collide after truncation.
    /// </summary>
    private static string Identifier(string prefix, string tableName, string suffix)
    {
        var name = $"{prefix}_{tableName}_{suffix}";
        if (name.Length <= MaxIdentifierLength)
        {
            return name;
        }

        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(tableName)))[..8];
        var keep = MaxIdentifierLength - prefix.Length - 1 - 1 - hash.Length - 1 - suffix.Length;
        return $"{prefix}_{tableName[..keep]}_{hash}_{suffix}";
    }

    /// <summary>
    /// Held until the migration's transaction ends: nodes migrating at once take turns (CREATE ... IF NOT EXISTS alone
    /// races in PostgreSQL).
    /// </summary>
    public override Task LockMigrationAsync(DbConnection connection, DbTransaction transaction, string tableName, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(new CommandDefinition(
            "SELECT pg_advisory_xact_lock(@LockKey);",
            new { LockKey = MigrationLockKey(tableName) },
            transaction,
            cancellationToken: cancellationToken));

    /// <summary>A stable 64-bit advisory lock key per table.</summary>
    internal static long MigrationLockKey(string tableName) =>
        BinaryPrimitives.ReadInt64BigEndian(SHA256.HashData(Encoding.UTF8.GetBytes("SessionMiddleware.PostgreSql migration " + tableName)));
}

/// <summary>
/// The PostgreSQL store's statements beyond the shared <see cref="SessionSql"/>: what PostgreSQL does differently
/// (one-statement renewal, batched deletes of a user's rows, cleanup deletes that skip rows other nodes hold).
/// </summary>
internal sealed class PostgreSqlSessionSql
{
    public PostgreSqlSessionSql(SessionSql common)
    {
        var t = common.Table;
        const string live = SessionSql.LiveCondition;

        // One statement, so one transaction: the DELETE locks the old row (a concurrent update or renewal of it waits,
        // then finds it gone or changed) and the INSERT takes its creation time and next version.
        Renew =
            $"WITH old AS (DELETE FROM {t} WHERE id = @OldId AND version = @ExpectedVersion AND {live} RETURNING created_at, version) " +
            $"INSERT INTO {t} (id, user_id, data, created_at, last_access, version, ip, user_agent, expires_at) " +
            $"SELECT @NewId, @UserId, @Data, old.created_at, @Now, old.version + 1, @Ip, @UserAgent, {SessionSql.NewExpiry("old.created_at")} FROM old RETURNING version;";

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
        DeleteByUserBatch =
            $"WITH batch AS MATERIALIZED (SELECT id FROM {t} WHERE user_id = @UserId AND (@ExceptId::bytea IS NULL OR id <> @ExceptId::bytea) ORDER BY id LIMIT @Limit FOR UPDATE) " +
            $"DELETE FROM {t} WHERE id IN (SELECT id FROM batch) RETURNING {SessionSql.LifetimeColumns};";

        // The cleaner's delete of the rows whose ends it has raised. Several nodes clean at once without waiting on each
        // other: the batch locks the rows it deletes, skipping rows another node (or a request) holds; a row used again
        // meanwhile (a node whose clock is behind) is no longer expired and stays.
        DeleteExpiredKeys =
            $"WITH batch AS MATERIALIZED (SELECT id FROM {t} WHERE id = ANY(@Ids) AND expires_at < @Now FOR UPDATE SKIP LOCKED) " +
            $"DELETE FROM {t} WHERE id IN (SELECT id FROM batch) RETURNING id;";
    }

    public string Renew { get; }

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
}
