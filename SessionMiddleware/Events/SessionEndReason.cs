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
}
