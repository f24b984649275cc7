namespace SessionMiddleware;

/// <summary>
/// Lists and ends sessions from anywhere in the app (an account page, an admin tool, a password change).
/// A revoked session is gone at once: its next request gets an empty session, and a request of it that is
/// already running writes nothing back.
/// </summary>
public interface ISessionManager
{
    /// <summary>The live sessions bound to <paramref name="userId"/>, most recently used first.</summary>
    /// <param name="userId">The user, as given to <see cref="IServerSideSession.BindToUser(string?)"/>.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    Task<IReadOnlyList<SessionInfo>> ListForUserAsync(string userId, CancellationToken cancellationToken = default);

    /// <summary>Ends one session.</summary>
    /// <param name="sessionId">The session's public ID (<c>ISession.Id</c> or <see cref="SessionInfo.Id"/>).</param>
    /// <param name="cancellationToken">Cancels the delete.</param>
    /// <returns><see langword="true"/> when a session was ended; <see langword="false"/> when there was none with that ID.</returns>
    Task<bool> RevokeAsync(string sessionId, CancellationToken cancellationToken = default);

    /// <summary>Ends every session of a user, except optionally one (typically the current one: "sign out everywhere else").</summary>
    /// <param name="userId">The user.</param>
    /// <param name="exceptSessionId">The public ID of a session to keep, or <see langword="null"/>.</param>
    /// <param name="cancellationToken">Cancels the delete.</param>
    /// <returns>How many sessions were ended.</returns>
    Task<int> RevokeAllForUserAsync(string userId, string? exceptSessionId = null, CancellationToken cancellationToken = default);
}
