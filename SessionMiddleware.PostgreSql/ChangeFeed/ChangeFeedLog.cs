using Microsoft.Extensions.Logging;

namespace SessionMiddleware.PostgreSql.ChangeFeed;

/// <summary>The log events of the PostgreSQL change feed (event IDs 2460–2479).</summary>
internal static partial class ChangeFeedLog
{
    [LoggerMessage(2460, LogLevel.Information, "Listening on PostgreSQL channel \"{Channel}\" (backend process {ProcessId}) for sessions ended or renewed by other servers; the sessions held open here were checked against the store.", EventName = "PostgreSqlChangeFeedListening")]
    public static partial void Listening(ILogger logger, string channel, int processId);

    [LoggerMessage(2461, LogLevel.Warning, "The change feed's PostgreSQL connection failed or was lost; ends committed by other servers reach this one's connections once it is back (it reconnects in {Delay}, then checks every session held open here against the store).", EventName = "PostgreSqlChangeFeedLost")]
    public static partial void Lost(ILogger logger, TimeSpan delay, Exception exception);

    [LoggerMessage(2462, LogLevel.Warning, "A notification on channel \"{Channel}\" could not be read (from a newer version of the library?): every session held open here is checked against the store instead. Payload starts: {Start}", EventName = "PostgreSqlChangeFeedUnreadable")]
    public static partial void Unreadable(ILogger logger, string channel, string start);

    [LoggerMessage(2463, LogLevel.Error, "Handling a notification of channel \"{Channel}\" failed; every session held open here is checked against the store instead.", EventName = "PostgreSqlChangeFeedHandlerFailed")]
    public static partial void HandlerFailed(ILogger logger, string channel, Exception exception);

    [LoggerMessage(2464, LogLevel.Debug, "The change feed stopped listening on channel \"{Channel}\".", EventName = "PostgreSqlChangeFeedStopped")]
    public static partial void Stopped(ILogger logger, string channel);
}
