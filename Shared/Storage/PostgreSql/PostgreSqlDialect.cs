using System.Buffers.Binary;
using System.Data.Common;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
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
        connection.ExecuteAsync(SqlStatement.Of(
            "SELECT pg_advisory_xact_lock(@LockKey);",
            new { LockKey = MigrationLockKey(tableName) },
            transaction,
            cancellationToken: cancellationToken));

    /// <summary>A stable 64-bit advisory lock key per table.</summary>
    internal static long MigrationLockKey(string tableName) =>
        BinaryPrimitives.ReadInt64BigEndian(SHA256.HashData(Encoding.UTF8.GetBytes("SessionMiddleware.PostgreSql migration " + tableName)));
}
