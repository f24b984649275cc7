using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using SessionMiddleware.Storage;

namespace SessionMiddleware.PostgreSql;

/// <summary>
/// Every SQL statement of the PostgreSQL store, built once for one (validated, quoted) table name. Every value
/// is a parameter; "now" is a parameter taken from <see cref="TimeProvider"/>, never the server's clock.
/// Unqualified names resolve through the connection's <c>search_path</c>: the tables live in <c>current_schema()</c>.
/// </summary>
internal sealed class PostgreSqlSessionSql
{
    /// <summary>PostgreSQL truncates longer identifiers (NAMEDATALEN - 1).</summary>
    private const int MaxIdentifierLength = 63;

    /// <summary>The columns of the session table (<see cref="SessionTableSchema.ColumnNames"/>) with their types as <c>information_schema.columns.data_type</c> reports them.</summary>
    public static readonly IReadOnlyList<(string Name, string Type)> Columns =
    [
        ("id", "bytea"),
        ("user_id", "text"),
        ("data", "bytea"),
        ("created_at", "bigint"),
        ("last_access", "bigint"),
        ("version", "bigint"),
        ("ip", "text"),
        ("user_agent", "text"),
    ];

    public PostgreSqlSessionSql(string tableName)
    {
        if (tableName is null || !ServerSideSessionOptionsValidator.TableNamePattern().IsMatch(tableName))
        {
            throw new ArgumentException($"Invalid session table name '{tableName}'.", nameof(tableName));
        }

        TableName = tableName;
        MigrationLockKey = LockKey("SessionMiddleware.PostgreSql migration " + tableName);
        var t = Quote(tableName);
        var schemaTable = Quote(SessionTableSchema.VersionTable);
        const string live = "last_access >= @IdleCutoff AND created_at >= @AbsoluteCutoff";

        // Held until the migration's transaction ends: a second node migrating at the same time waits, then finds the table.
        AcquireMigrationLock =
            "SELECT pg_advisory_xact_lock(@LockKey);";
        SelectServerVersion =
            "SHOW server_version;";
        CreateSchemaTable =
            $"CREATE TABLE IF NOT EXISTS {schemaTable} (table_name text NOT NULL PRIMARY KEY, version integer NOT NULL, migrated_at bigint NOT NULL);";
        SelectSchemaVersion =
            $"SELECT version FROM {schemaTable} WHERE table_name = @TableName;";
        UpsertSchemaVersion =
            $"INSERT INTO {schemaTable} AS s (table_name, version, migrated_at) VALUES (@TableName, @Version, @Now) " +
            "ON CONFLICT (table_name) DO UPDATE SET version = excluded.version, migrated_at = excluded.migrated_at WHERE s.version < excluded.version;";
        SelectColumns =
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
        CreateTable =
            $"""
            CREATE TABLE IF NOT EXISTS {t} (
                id bytea NOT NULL PRIMARY KEY,
                user_id text NULL,
                data bytea NOT NULL,
                created_at bigint NOT NULL,
                last_access bigint NOT NULL,
                version bigint NOT NULL,
                ip text NULL,
                user_agent text NULL
            );
            CREATE INDEX IF NOT EXISTS {Quote(IndexName(tableName, "last_access"))} ON {t} (last_access);
            CREATE INDEX IF NOT EXISTS {Quote(IndexName(tableName, "created_at"))} ON {t} (created_at);
            CREATE INDEX IF NOT EXISTS {Quote(IndexName(tableName, "user_id"))} ON {t} (user_id) WHERE user_id IS NOT NULL;
            """;

        Load =
            $"SELECT data AS Data, version AS Version, user_id AS UserId, created_at AS CreatedAt, last_access AS LastAccess FROM {t} WHERE id = @Id;";
        DeleteIfExpired =
            $"DELETE FROM {t} WHERE id = @Id AND (last_access < @IdleCutoff OR created_at < @AbsoluteCutoff);";
        Insert =
            $"INSERT INTO {t} (id, user_id, data, created_at, last_access, version, ip, user_agent) VALUES (@Id, @UserId, @Data, @Now, @Now, 1, @Ip, @UserAgent);";
        Update =
            $"UPDATE {t} SET data = @Data, version = version + 1, last_access = @Now " +
            $"WHERE id = @Id AND version = @ExpectedVersion AND {live} RETURNING version;";
        SelectLiveVersion =
            $"SELECT version FROM {t} WHERE id = @Id AND {live};";
        Touch =
            $"UPDATE {t} SET last_access = @Now WHERE id = @Id AND {live};";
        Delete =
            $"DELETE FROM {t} WHERE id = @Id;";

        // One statement, so one transaction: the DELETE locks the old row (a concurrent update or renewal of it
        // waits, then finds it gone or changed) and the INSERT takes its creation time and next version.
        Renew =
            $"WITH old AS (DELETE FROM {t} WHERE id = @OldId AND version = @ExpectedVersion AND {live} RETURNING created_at, version) " +
            $"INSERT INTO {t} (id, user_id, data, created_at, last_access, version, ip, user_agent) " +
            "SELECT @NewId, @UserId, @Data, old.created_at, @Now, old.version + 1, @Ip, @UserAgent FROM old RETURNING version;";
        ListByUser =
            "SELECT id AS Id, user_id AS UserId, created_at AS CreatedAt, last_access AS LastAccess, ip AS Ip, user_agent AS UserAgent " +
            $"FROM {t} WHERE user_id = @UserId AND {live} ORDER BY last_access DESC, created_at DESC;";
        DeleteByUser =
            $"WITH deleted AS (DELETE FROM {t} WHERE user_id = @UserId AND (@ExceptId::bytea IS NULL OR id <> @ExceptId::bytea) " +
            "RETURNING last_access, created_at) " +
            "SELECT count(*)::int FROM deleted WHERE last_access >= @IdleCutoff AND created_at >= @AbsoluteCutoff;";

        // Several nodes clean at once without waiting on each other or deleting the same rows twice: each batch
        // locks the rows it picks, skipping rows another node (or a request) holds. The CTE is evaluated once,
        // so a batch never deletes more than @Limit rows.
        DeleteIdleBatch =
            $"WITH batch AS MATERIALIZED (SELECT id FROM {t} WHERE last_access < @IdleCutoff LIMIT @Limit FOR UPDATE SKIP LOCKED) " +
            $"DELETE FROM {t} WHERE id IN (SELECT id FROM batch);";
        DeleteTooOldBatch =
            $"WITH batch AS MATERIALIZED (SELECT id FROM {t} WHERE created_at < @AbsoluteCutoff LIMIT @Limit FOR UPDATE SKIP LOCKED) " +
            $"DELETE FROM {t} WHERE id IN (SELECT id FROM batch);";
    }

    public string TableName { get; }

    /// <summary>The <c>pg_advisory_xact_lock</c> key of this table's migration.</summary>
    public long MigrationLockKey { get; }

    public string AcquireMigrationLock { get; }

    public string SelectServerVersion { get; }

    public string CreateSchemaTable { get; }

    public string SelectSchemaVersion { get; }

    public string UpsertSchemaVersion { get; }

    public string SelectColumns { get; }

    public string CreateTable { get; }

    public string Load { get; }

    public string DeleteIfExpired { get; }

    public string Insert { get; }

    public string Update { get; }

    public string SelectLiveVersion { get; }

    public string Touch { get; }

    public string Delete { get; }

    public string Renew { get; }

    public string ListByUser { get; }

    public string DeleteByUser { get; }

    public string DeleteIdleBatch { get; }

    public string DeleteTooOldBatch { get; }

    /// <summary>Quotes an identifier that has already been checked against the table-name pattern.</summary>
    public static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>
    /// <c>ix_{table}_{column}</c>, or, when that is longer than PostgreSQL keeps, the table name shortened and a
    /// hash of it added, so that the three indexes of a long table name never collide after truncation.
    /// </summary>
    public static string IndexName(string tableName, string column)
    {
        var name = $"ix_{tableName}_{column}";
        if (name.Length <= MaxIdentifierLength)
        {
            return name;
        }

        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(tableName)))[..8];
        var keep = MaxIdentifierLength - "ix_".Length - 1 - hash.Length - 1 - column.Length;
        return $"ix_{tableName[..keep]}_{hash}_{column}";
    }

    /// <summary>A stable 64-bit advisory lock key for a name.</summary>
    private static long LockKey(string name) => BinaryPrimitives.ReadInt64BigEndian(SHA256.HashData(Encoding.UTF8.GetBytes(name)));
}
