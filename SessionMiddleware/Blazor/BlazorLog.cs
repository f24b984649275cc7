using Microsoft.Extensions.Logging;

namespace SessionMiddleware.Blazor;

/// <summary>The log events of Blazor Server circuits tied to their session (event IDs 2440–2459).</summary>
internal static partial class BlazorLog
{
    [LoggerMessage(2440, LogLevel.Debug, "Circuit {CircuitId} is tied to session {SessionId}.", EventName = "CircuitSessionBound")]
    public static partial void Bound(ILogger logger, string circuitId, string sessionId);

    [LoggerMessage(2441, LogLevel.Debug, "Circuit {CircuitId} was opened by a request without a stored session: nothing ends it but the circuit's own close.", EventName = "CircuitWithoutSession")]
    public static partial void WithoutSession(ILogger logger, string circuitId);

    [LoggerMessage(2442, LogLevel.Information, "Session {SessionId} ended: circuit {CircuitId} now runs as the anonymous user and is closed.", EventName = "CircuitSessionEnded")]
    public static partial void SessionEnded(ILogger logger, string sessionId, string circuitId);

    [LoggerMessage(2443, LogLevel.Warning, "The circuit's AuthenticationStateProvider ({ProviderType}) does not implement IHostEnvironmentAuthenticationStateProvider, so it cannot be told that session {SessionId} ended; circuit {CircuitId} is closed all the same.", EventName = "CircuitAuthenticationStateNotSettable")]
    public static partial void StateNotSettable(ILogger logger, string providerType, string sessionId, string circuitId);

    [LoggerMessage(2444, LogLevel.Information, "Circuit {CircuitId} tried to reconnect after its session {SessionId} ended: refused.", EventName = "CircuitReconnectRefused")]
    public static partial void ReconnectRefused(ILogger logger, string circuitId, string sessionId);

    [LoggerMessage(2445, LogLevel.Debug, "An event for circuit {CircuitId} arrived after its session {SessionId} ended: not run.", EventName = "CircuitActivityDropped")]
    public static partial void ActivityDropped(ILogger logger, string circuitId, string sessionId);

    [LoggerMessage(2446, LogLevel.Warning, "Finding the session of a Blazor hub connection failed; the connection's call fails and the browser may retry.", EventName = "CircuitSessionLookupFailed")]
    public static partial void LookupFailed(ILogger logger, Exception exception);

    [LoggerMessage(2447, LogLevel.Debug, "Circuit {CircuitId} closed: its hold on session {SessionId} is released.", EventName = "CircuitSessionReleased")]
    public static partial void Released(ILogger logger, string circuitId, string sessionId);
}
