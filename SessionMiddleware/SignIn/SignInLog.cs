using Microsoft.Extensions.Logging;

namespace SessionMiddleware.SignIn;

/// <summary>
/// The log events of the sign-in policies: credential changes and recent sign-in (event IDs 2490–2499; the ticket store's
/// 2493–2494 are in <see cref="Authentication.TicketSignIns"/>).
/// </summary>
internal static partial class SignInLog
{
    [LoggerMessage(2490, LogLevel.Information, "A user's credential stamp changed: {Count} of their other sessions ended (user ID of {UserIdLength} characters, not logged).", EventName = "CredentialChangeEndedSessions")]
    public static partial void CredentialChangeEndedSessions(ILogger logger, int count, int userIdLength);

    [LoggerMessage(2491, LogLevel.Debug, "A user was updated without a readable security stamp: no session was ended for it.", EventName = "CredentialStampUnavailable")]
    public static partial void CredentialStampUnavailable(ILogger logger, Exception exception);

    [LoggerMessage(2492, LogLevel.Information, "Authorization needs a sign-in within the last {MaxAge}; session {SessionId} signed in {Age} ago (or not at all): challenging for a new sign-in.", EventName = "RecentSignInChallenged")]
    public static partial void RecentSignInChallenged(ILogger logger, TimeSpan maxAge, string? sessionId, TimeSpan? age);
}
