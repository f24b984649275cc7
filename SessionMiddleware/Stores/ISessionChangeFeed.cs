namespace SessionMiddleware;

/// <summary>
/// Optional for a store that several processes or servers share: tells this process when a session ends or moves to a
/// new ID in another one, so that the connections it holds for that session (SignalR hub connections, Blazor Server
/// circuits, <see cref="IServerSideSession.Ended"/>) end too. Registered in the container next to the store; without
/// one, ends reach only the connections of the process that committed them, and expiry (which every process checks for
/// itself) all of them.
/// </summary>
/// <remarks>
/// A feed reports the ends a store's <see cref="IServerSideSessionStore.DeleteAsync"/> and
/// <see cref="IServerSideSessionStore.DeleteByUserAsync"/> commit and the renewals of
/// <see cref="IServerSideSessionStore.RenewAsync"/>, in any process, this one included (a repeated report is harmless).
/// Expired rows need no report. Its cost must not grow with the number of open connections.
/// </remarks>
public interface ISessionChangeFeed
{
    /// <summary>
    /// Reports changes to <paramref name="listener"/> until <paramref name="cancellationToken"/> is cancelled. Calls
    /// <see cref="ISessionChangeListener.ResynchronizeAsync"/> once listening has started and again after every gap in
    /// which a change may have been missed (a reconnect), so that the listener checks what it holds.
    /// </summary>
    /// <param name="listener">What to tell.</param>
    /// <param name="cancellationToken">Stops listening.</param>
    /// <returns>A task that completes when listening stopped; it fails when the feed gives up (the caller restarts it).</returns>
    Task ListenAsync(ISessionChangeListener listener, CancellationToken cancellationToken);
}

/// <summary>What an <see cref="ISessionChangeFeed"/> reports to.</summary>
public interface ISessionChangeListener
{
    /// <summary>The session under <paramref name="key"/> ended (deleted by a sign-out, an abandon or a revoke).</summary>
    /// <param name="key">The SHA-256 hash of the secret session ID.</param>
    void SessionEnded(ReadOnlySpan<byte> key);

    /// <summary>The session under <paramref name="oldKey"/> now lives under <paramref name="newKey"/>, bound to <paramref name="userId"/>.</summary>
    /// <param name="oldKey">The key before the renewal.</param>
    /// <param name="newKey">The key after it.</param>
    /// <param name="userId">The user the renewed session is bound to; a change of user ends what was open for the old one.</param>
    void SessionRenewed(ReadOnlySpan<byte> oldKey, ReadOnlySpan<byte> newKey, string? userId);

    /// <summary>Changes may have been missed: checks every session the listener holds against the store.</summary>
    /// <param name="cancellationToken">Cancels the check.</param>
    /// <returns>A task that completes when every held session was checked.</returns>
    Task ResynchronizeAsync(CancellationToken cancellationToken);
}
