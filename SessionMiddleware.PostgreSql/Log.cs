using Microsoft.Extensions.Logging;

namespace SessionMiddleware.PostgreSql;

/// <summary>The PostgreSQL store's log messages (its event ids are not used by the core library).</summary>
internal static partial class Log
{
    [LoggerMessage(31, LogLevel.Information, "Session table \"{TableName}\" is ready on PostgreSQL {ServerVersion} (created: {Created}, upgraded from schema version: {UpgradedFrom}, schema version {SchemaVersion}).", EventName = "MigratedPostgreSql")]
    public static partial void MigratedPostgreSql(ILogger logger, string tableName, bool created, int? upgradedFrom, int schemaVersion, string serverVersion);

    [LoggerMessage(80, LogLevel.Error, "A batch of {Count} session writes failed on PostgreSQL; none of them is reported as stored.", EventName = "PostgreSqlWriteBatchFailed")]
    public static partial void PostgreSqlWriteBatchFailed(ILogger logger, int count, Exception exception);

    [LoggerMessage(81, LogLevel.Debug, "A statement of a batch of {Count} session writes failed (SQLSTATE {SqlState}); the batch was rolled back and each write runs alone.", EventName = "PostgreSqlWriteBatchRetried")]
    public static partial void PostgreSqlWriteBatchRetried(ILogger logger, int count, string sqlState);

    [LoggerMessage(2300, LogLevel.Warning, "The session writer's PostgreSQL connection was lost (a server restart, failover or terminated backend); the {Count} writes of its batch run again on a new connection.", EventName = "PostgreSqlWriteConnectionLost")]
    public static partial void PostgreSqlWriteConnectionLost(ILogger logger, int count, Exception exception);

    [LoggerMessage(2301, LogLevel.Information, "A session write waits for a row another transaction holds locked; it runs alone on a connection of its own while the other writes go on.", EventName = "PostgreSqlWriteWaitsForLock")]
    public static partial void PostgreSqlWriteWaitsForLock(ILogger logger);
}
