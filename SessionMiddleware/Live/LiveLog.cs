using Microsoft.Extensions.Logging;

namespace SessionMiddleware.Live;

/// <summary>The log events of live connections (event IDs 2400–2419).</summary>
internal static partial class LiveLog
{
    [LoggerMessage(2400, LogLevel.Debug, "Session {SessionId} ended: its open connections and circuits are closed.", EventName = "LiveSessionEnded")]
    public static partial void LiveSessionEnded(ILogger logger, string sessionId);

    [LoggerMessage(2401, LogLevel.Error, "A callback registered on a session's end (IServerSideSession.Ended, a connection's close) threw.", EventName = "LiveSessionEndCallbackFailed")]
    public static partial void EndCallbackFailed(ILogger logger, Exception exception);

    [LoggerMessage(2402, LogLevel.Information, "Checked the {Count} sessions held open after a gap in the store's change feed: {Ended} had ended meanwhile.", EventName = "LiveSessionsResynchronized")]
    public static partial void Resynchronized(ILogger logger, int count, int ended);

    [LoggerMessage(2403, LogLevel.Warning, "Recording activity over a connection of session {SessionId} failed; the connection stays open and the next activity tries again.", EventName = "LiveSessionTouchFailed")]
    public static partial void TouchFailed(ILogger logger, string sessionId, Exception exception);

    [LoggerMessage(2404, LogLevel.Warning, "Checking the sessions held open by connections against the store failed; connections stay open, and the check runs again in {Delay}.", EventName = "LiveSessionCheckFailed")]
    public static partial void CheckFailed(ILogger logger, TimeSpan delay, Exception exception);

    [LoggerMessage(2405, LogLevel.Warning, "The store's change feed ({Feed}) stopped; ends committed by other processes reach this one's connections again once it restarts in {Delay} (and what was missed is checked then).", EventName = "LiveSessionFeedFailed")]
    public static partial void FeedFailed(ILogger logger, string feed, TimeSpan delay, Exception exception);
}
