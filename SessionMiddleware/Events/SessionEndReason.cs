namespace SessionMiddleware;

/// <summary>
/// Why a session ended: <see cref="SessionEndedContext.Reason"/> of <see cref="ServerSideSessionEvents.OnEnded"/>, and the
/// <c>reason</c> tag of the <c>sessionmiddleware.sessions.ended</c> counter (the same strings).
/// </summary>
public static class SessionEndReason
{
    /// <summary>The app called <see cref="IServerSideSession.Abandon"/>: <c>abandoned</c>.</summary>
    public const string Abandoned = "abandoned";

    /// <summary>Cookie authentication signed the user out through the ticket store (<c>AddTicketStore</c>): <c>signed_out</c>.</summary>
    public const string SignedOut = "signed_out";

    /// <summary><see cref="ISessionManager.RevokeAsync"/> or <see cref="ISessionManager.RevokeAllForUserAsync"/>: <c>revoked</c>.</summary>
    public const string Revoked = "revoked";

    /// <summary>Not used for <see cref="ServerSideSessionOptions.IdleTimeout"/> (or a remembered sign-in past its expiry): <c>idle_timeout</c>.</summary>
    public const string IdleTimeout = "idle_timeout";

    /// <summary>Reached <see cref="ServerSideSessionOptions.AbsoluteTimeout"/> after its creation: <c>absolute_timeout</c>.</summary>
    public const string AbsoluteTimeout = "absolute_timeout";

    /// <summary>
    /// Ended by its user's sign-in elsewhere over <see cref="ServerSideSessionOptions.MaxSessionsPerUser"/>, as the least
    /// recently used of the user's sessions: <c>session_limit</c>.
    /// </summary>
    public const string SessionLimit = "session_limit";

    /// <summary>
    /// The user's credentials changed (ASP.NET Core Identity's security stamp: a password change or reset, a two-factor
    /// change, <c>UpdateSecurityStampAsync</c>) after this session signed in: <c>credentials_changed</c>.
    /// </summary>
    public const string CredentialsChanged = "credentials_changed";

    /// <summary>The identity provider signed the user out (OpenID Connect back-channel logout): <c>provider_signed_out</c>.</summary>
    public const string ProviderSignedOut = "provider_signed_out";
}
