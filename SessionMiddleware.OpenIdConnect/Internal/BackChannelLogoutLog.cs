using Microsoft.Extensions.Logging;

namespace SessionMiddleware.OpenIdConnect.Internal;

/// <summary>The back-channel logout's log messages (event ids 2500–2519). The token itself is never logged.</summary>
internal static partial class BackChannelLogoutLog
{
    public const string CategoryName = "SessionMiddleware.OpenIdConnect.BackChannelLogout";

    [LoggerMessage(2500, LogLevel.Warning, "Back-channel logout refused for scheme {Scheme}: {Reason} ({Description})", EventName = "LogoutRefused")]
    public static partial void Refused(ILogger logger, string scheme, string reason, string description);

    [LoggerMessage(2501, LogLevel.Warning, "Back-channel logout refused for scheme {Scheme}: the token failed validation: {Reason} ({ExceptionType})", EventName = "LogoutTokenInvalid")]
    public static partial void TokenInvalid(ILogger logger, string scheme, string reason, string exceptionType);

    [LoggerMessage(2502, LogLevel.Information, "Back-channel logout from {Issuer} ended {Count} session(s) of a provider {Kind} (scheme {Scheme}).", EventName = "SessionsEnded")]
    public static partial void SessionsEnded(ILogger logger, string issuer, int count, string kind, string scheme);

    [LoggerMessage(2503, LogLevel.Information, "Back-channel logout from {Issuer} matched no session of a provider {Kind} (scheme {Scheme}).", EventName = "NoSessionMatched")]
    public static partial void NoSessionMatched(ILogger logger, string issuer, string kind, string scheme);

    [LoggerMessage(2504, LogLevel.Error, "Back-channel logout from {Issuer} failed while ending sessions (scheme {Scheme}); the provider may retry with the same token.", EventName = "LogoutFailed")]
    public static partial void Failed(ILogger logger, string issuer, string scheme, Exception exception);

    [LoggerMessage(2505, LogLevel.Debug, "Back-channel logout for scheme {Scheme} mapped at {Pattern}.", EventName = "EndpointMapped")]
    public static partial void Mapped(ILogger logger, string scheme, string pattern);
}
