using System.Globalization;

namespace SessionMiddleware.Storage.Sqlite;

/// <summary>SQLite's types, catalog query and table options.</summary>
internal sealed class SqliteDialect : SessionSqlDialect
{
    public static readonly SqliteDialect Instance = new();

    public override string BinaryType => "BLOB";

    public override string TextType => "TEXT";

    public override string Int64Type => "INTEGER";

    public override string Int32Type => "INTEGER";

    public override string SelectColumns =>
        "SELECT name AS Name, type AS Type, \"notnull\" AS NotNullFlag, pk AS Pk FROM pragma_table_info(@TableName) ORDER BY cid;";

    public override string SelectIndexNames =>
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = @TableName;";

    // Rows live in the b-tree of their id, which every load, update and the cleaner's deletes use.
    public override string TableOptions => " WITHOUT ROWID";

    // Several processes on one file learn of each other's ends and renewals from this table (schema 3).
    public override string ChangesTableName(string tableName) => tableName + "_changes";

    public override string SelectTriggerNames =>
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = @TableName;";

    public override IReadOnlyList<string> ExpiryTriggerNames(string tableName) =>
        [$"tr_{tableName}_expires_at_insert", $"tr_{tableName}_expires_at_update"];

    // SQLite's triggers cannot change NEW: an AFTER trigger updates the row it was fired for. The inner UPDATE sets only
    // expires_at, so it fires neither trigger again.
    public override string CreateExpiryTriggers(string tableName, long idleSeconds, long absoluteSeconds)
    {
        var t = Quote(tableName);
        var names = ExpiryTriggerNames(tableName);
        var idle = idleSeconds.ToString(CultureInfo.InvariantCulture);
        var derived = $"min(NEW.last_access + {idle}, NEW.created_at + {absoluteSeconds.ToString(CultureInfo.InvariantCulture)})";
        return
            $"CREATE TRIGGER IF NOT EXISTS {Quote(names[0])} AFTER INSERT ON {t} FOR EACH ROW WHEN NEW.expires_at = 0 " +
            $"BEGIN UPDATE {t} SET expires_at = {derived} WHERE id = NEW.id; END;\n" +
            $"CREATE TRIGGER IF NOT EXISTS {Quote(names[1])} AFTER UPDATE OF last_access ON {t} FOR EACH ROW " +
            $"WHEN NEW.expires_at = OLD.expires_at AND NEW.last_access > OLD.last_access AND OLD.expires_at = OLD.last_access + {idle} " +
            $"BEGIN UPDATE {t} SET expires_at = {derived} WHERE id = NEW.id; END;";
    }
}
