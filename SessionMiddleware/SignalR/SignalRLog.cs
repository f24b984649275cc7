using Microsoft.Extensions.Logging;

namespace SessionMiddleware.SignalR;

/// <summary>The log events of SignalR hub connections tied to sessions (event IDs 2420–2439).</summary>
internal static partial class SignalRLog
{
    [LoggerMessage(2420, LogLevel.Debug, "Hub connection {ConnectionId} is tied to session {SessionId}: it closes when the session ends.", EventName = "HubConnectionTiedToSession")]
    public static partial void ConnectionTied(ILogger logger, string connectionId, string sessionId);

    [LoggerMessage(2421, LogLevel.Information, "Hub connection {ConnectionId} closed: its session {SessionId} ended.", EventName = "HubConnectionSessionEnded")]
    public static partial void ConnectionClosedSessionEnded(ILogger logger, string connectionId, string sessionId);

    [LoggerMessage(2422, LogLevel.Information, "Hub connection {ConnectionId} refused: it has no session, and ServerSideSessionHubOptions.RequireSession is set.", EventName = "HubConnectionRefusedWithoutSession")]
    public static partial void ConnectionRefusedWithoutSession(ILogger logger, string connectionId);

    [LoggerMessage(2423, LogLevel.Debug, "Hub method {HubMethod} not run on connection {ConnectionId}: its session {SessionId} has ended.", EventName = "HubInvocationRefusedSessionEnded")]
    public static partial void InvocationRefused(ILogger logger, string hubMethod, string connectionId, string sessionId);
}
