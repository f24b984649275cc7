namespace SessionMiddleware;

/// <summary>
/// Lists and ends sessions from anywhere in the app (an account page, an admin tool, a password change).
/// A revoked session is gone at once: its next request gets an empty session, and a request of it that is
/// already running writes nothing back.
/// </summary>
public interface ISessionManager
{
    /// <summary>
    /// The live sessions bound to <paramref name="userId"/>, most recently used first: at most 1,000 (the 1,000 most
    /// recently used; a user rarely has more than a few). To go through all of a user's sessions, however many, page with
    /// <see cref="QueryAsync"/> and a <see cref="SessionFilter"/> whose <see cref="SessionFilter.UserId"/> is set.
    /// </summary>
    /// <param name="userId">The user, as given to <see cref="IServerSideSession.BindToUser(string?)"/>.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    Task<IReadOnlyList<SessionInfo>> ListForUserAsync(string userId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Ends one session, raising <see cref="ServerSideSessionEvents.OnEnded"/> (reason <see cref="SessionEndReason.Revoked"/>)
    /// once it is deleted.
    /// </summary>
    /// <param name="sessionId">The session's public ID (<c>ISession.Id</c> or <see cref="SessionInfo.Id"/>).</param>
    /// <param name="cancellationToken">Cancels the delete.</param>
    /// <returns>
    /// <see langword="true"/> when a session was ended; <see langword="false"/> when there was none with that ID, or it had
    /// expired already (its row is deleted, and its end raised with the timeout as the reason).
    /// </returns>
    Task<bool> RevokeAsync(string sessionId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Ends every session of a user, except optionally one (typically the current one: "sign out everywhere else"). The
    /// sessions are deleted in batches of <see cref="ServerSideSessionOptions.CleanupBatchSize"/>, so that other requests'
    /// writes go on between them however many sessions the user has; <see cref="ServerSideSessionEvents.OnEnded"/> is
    /// raised for each session once its batch is deleted.
    /// </summary>
    /// <param name="userId">The user.</param>
    /// <param name="exceptSessionId">The public ID of a session to keep, or <see langword="null"/>.</param>
    /// <param name="cancellationToken">Cancels the delete; the batches deleted before stay deleted.</param>
    /// <returns>How many live sessions were ended (expired rows of the user are deleted too, uncounted).</returns>
    Task<int> RevokeAllForUserAsync(string userId, string? exceptSessionId = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// One page of the live sessions matching <paramref name="filter"/>, most recently created first. Keyset paging:
    /// each page is an index range scan, however deep, and a page never repeats or skips a session that existed
    /// throughout, while others are created and deleted.
    /// </summary>
    /// <param name="filter">Which sessions (<see cref="SessionFilter.All"/> for every one).</param>
    /// <param name="pageSize">The most sessions to return, 1 to 1000.</param>
    /// <param name="continuationToken">The <see cref="SessionPage.ContinuationToken"/> of the previous page, or <see langword="null"/> for the first.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The page.</returns>
    /// <exception cref="ArgumentException">The continuation token is not one this method returned.</exception>
    Task<SessionPage> QueryAsync(SessionFilter filter, int pageSize = 100, string? continuationToken = null, CancellationToken cancellationToken = default);

    /// <summary>How many live sessions match <paramref name="filter"/>.</summary>
    /// <param name="filter">Which sessions (<see cref="SessionFilter.All"/> for every one).</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The count.</returns>
    Task<long> CountAsync(SessionFilter filter, CancellationToken cancellationToken = default);

    /// <summary>
    /// Ends every session whose recorded sign-in matches <paramref name="filter"/> (a provider's session or subject, or a
    /// user's sessions signed in before a change of credentials), except <paramref name="exceptSessionId"/>, raising each
    /// end with <paramref name="reason"/>; live connections of those sessions close.
    /// </summary>
    /// <param name="filter">Which sign-ins.</param>
    /// <param name="reason">The reason their ends carry, one of <see cref="SessionEndReason"/> (e.g. <see cref="SessionEndReason.ProviderSignedOut"/>).</param>
    /// <param name="exceptSessionId">A session to keep (<see cref="Microsoft.AspNetCore.Http.ISession.Id"/>), or <see langword="null"/>.</param>
    /// <param name="cancellationToken">Cancels the deletes.</param>
    /// <returns>How many live sessions ended.</returns>
    Task<int> EndSignInsAsync(SessionSignInFilter filter, string reason, string? exceptSessionId = null, CancellationToken cancellationToken = default);
}
