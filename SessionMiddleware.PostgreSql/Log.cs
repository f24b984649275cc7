using Microsoft.Extensions.Logging;

namespace SessionMiddleware.PostgreSql;

/// <summary>The PostgreSQL store's log messages (its event ids are not used by the core library).</summary>
internal static partial class Log
{
    [LoggerMessage(31, LogLevel.Information, "Session table \"{TableName}\" is ready on PostgreSQL {ServerVersion} (created: {Created}, upgraded from schema version: {UpgradedFrom}, schema version {SchemaVersion}).", EventName = "MigratedPostgreSql")]
    public static partial void MigratedPostgreSql(ILogger logger, string tableName, bool created, int? upgradedFrom, int schemaVersion, string serverVersion);
}
