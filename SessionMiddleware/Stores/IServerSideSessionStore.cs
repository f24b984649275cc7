namespace SessionMiddleware;

/// <summary>
/// Where sessions live. The middleware, the cleaner and the migration talk to the database only through
/// this contract, so a store for another database (PostgreSQL, …) can replace the SQLite default.
/// </summary>
/// <remarks>
/// Keys are the SHA-256 hash of the secret session ID (32 bytes); a store never sees the secret ID or the
/// cookie. Every row has its own expiry (<c>expires_at</c>): the caller's, or by default last access + idle timeout
/// capped by creation + absolute timeout. A store takes "now" from the <see cref="TimeProvider"/> it was given, never
/// from the database's clock, and treats a row past its expiry as missing. Expired rows are deleted by the cleaner only
/// (<see cref="ListExpiredAsync"/>, then <see cref="DeleteExpiredAsync"/>), which raises each one's end first; every
/// other delete returns the rows it deleted, so that their ends are raised too.
/// </remarks>
public interface IServerSideSessionStore
{
    /// <summary>
    /// Creates the session table and its indexes when missing; does nothing when they exist with the
    /// expected shape. Safe to call from several processes at once.
    /// </summary>
    /// <param name="cancellationToken">Cancels the migration.</param>
    /// <exception cref="SessionStoreSchemaException">A table of that name exists with another shape.</exception>
    Task MigrateAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Checks, without changing anything, that the session table exists at the schema version and with the shape
    /// <see cref="MigrateAsync"/> makes. Runs when the host starts, after any call to
    /// <c>MigrateServerSideSessionsAsync</c>; a SQL store calls <c>SessionTableMigrator.CheckAsync</c>.
    /// </summary>
    /// <param name="cancellationToken">Cancels the check.</param>
    /// <returns>A task that completes when the table is ready.</returns>
    /// <exception cref="InvalidOperationException">The table does not exist; the message names the migration call.</exception>
    /// <exception cref="SessionStoreSchemaException">The table has another shape or another schema version.</exception>
    Task CheckSchemaAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Loads a session by key. Returns <see langword="null"/> when there is no such session or it has
    /// expired. An expired row is left for the cleaner, which raises its end before deleting it.
    /// </summary>
    /// <param name="key">The SHA-256 hash of the secret session ID.</param>
    /// <param name="cancellationToken">Cancels the load.</param>
    Task<StoredSession?> LoadAsync(byte[] key, CancellationToken cancellationToken = default);

    /// <summary>
    /// Stores a new session with version 1, created and last accessed now.
    /// </summary>
    /// <param name="session">The new session.</param>
    /// <param name="cancellationToken">Cancels the insert.</param>
    /// <returns>The stored session as the store recorded it.</returns>
    Task<StoredSession> CreateAsync(NewSession session, CancellationToken cancellationToken = default);

    /// <summary>
    /// Replaces a session's data if its stored version is still <paramref name="expectedVersion"/>
    /// (optimistic concurrency), incrementing the version and recording the access. Never creates a row.
    /// </summary>
    /// <param name="key">The SHA-256 hash of the secret session ID.</param>
    /// <param name="data">The serialized session data.</param>
    /// <param name="expectedVersion">The version the caller loaded.</param>
    /// <param name="expiresAt">The row's new expiry, or <see langword="null"/> for the default (see <see cref="NewSession.ExpiresAt"/>).</param>
    /// <param name="cancellationToken">Cancels the update.</param>
    Task<SessionUpdateResult> UpdateAsync(byte[] key, byte[] data, long expectedVersion, DateTimeOffset? expiresAt = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Records an access (sets the last-access time to now and the expiry) without changing the data or the version.
    /// </summary>
    /// <param name="key">The SHA-256 hash of the secret session ID.</param>
    /// <param name="expiresAt">The row's new expiry, or <see langword="null"/> for the default (see <see cref="NewSession.ExpiresAt"/>).</param>
    /// <param name="cancellationToken">Cancels the update.</param>
    /// <returns><see langword="false"/> when the session no longer exists or has expired.</returns>
    Task<bool> TouchAsync(byte[] key, DateTimeOffset? expiresAt = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Moves a session to a new key (ID renewal), in one transaction: the row under <paramref name="oldKey"/>
    /// is replaced by one under <see cref="NewSession.Key"/> with the given data, user, device and expiry, the same
    /// creation time and the next version, if its stored version is still <paramref name="expectedVersion"/>.
    /// The old key is dead once this returns <see cref="SessionUpdateStatus.Committed"/>.
    /// </summary>
    /// <param name="oldKey">The SHA-256 hash of the current secret session ID.</param>
    /// <param name="expectedVersion">The version the caller loaded.</param>
    /// <param name="renewed">The new key, the data, the user and the device to record.</param>
    /// <param name="cancellationToken">Cancels the renewal.</param>
    Task<SessionUpdateResult> RenewAsync(byte[] oldKey, long expectedVersion, NewSession renewed, CancellationToken cancellationToken = default);

    /// <summary>Lists the live sessions bound to a user, most recently used first, at most <paramref name="limit"/>.</summary>
    /// <param name="userId">The user.</param>
    /// <param name="limit">The most sessions to return (the most recently used).</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>One <see cref="SessionInfo"/> per session, its <see cref="SessionInfo.Id"/> the lowercase hex of the key.</returns>
    Task<IReadOnlyList<SessionInfo>> ListByUserAsync(string userId, int limit, CancellationToken cancellationToken = default);

    /// <summary>
    /// The live sessions matching <paramref name="filter"/>, most recently created first: ordered by creation time
    /// descending, then key descending, starting after <paramref name="after"/> (keyset paging, no offset).
    /// </summary>
    /// <param name="filter">Which sessions.</param>
    /// <param name="after">The position of the last session of the previous page, or <see langword="null"/> for the first page.</param>
    /// <param name="limit">The most sessions to return.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>One <see cref="SessionInfo"/> per session, its <see cref="SessionInfo.Id"/> the lowercase hex of the key.</returns>
    Task<IReadOnlyList<SessionInfo>> QueryAsync(SessionFilter filter, SessionCursor? after, int limit, CancellationToken cancellationToken = default);

    /// <summary>How many live sessions match <paramref name="filter"/>.</summary>
    /// <param name="filter">Which sessions.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The count.</returns>
    Task<long> CountAsync(SessionFilter filter, CancellationToken cancellationToken = default);

    /// <summary>
    /// Deletes at most <paramref name="maxRows"/> of the sessions bound to a user, live or expired, except the one under
    /// <paramref name="exceptKey"/>, in one short statement; the caller repeats it until it returns no row, so that a user
    /// with many sessions never holds the write lock for long.
    /// </summary>
    /// <param name="userId">The user.</param>
    /// <param name="exceptKey">The key of a session to keep, or <see langword="null"/>.</param>
    /// <param name="maxRows">The most rows to delete.</param>
    /// <param name="cancellationToken">Cancels the delete.</param>
    /// <returns>The rows deleted (at most <paramref name="maxRows"/>); none when the user has no other row left.</returns>
    Task<IReadOnlyList<SessionLifetime>> DeleteByUserAsync(string userId, byte[]? exceptKey, int maxRows, CancellationToken cancellationToken = default);

    /// <summary>
    /// Deletes at most <paramref name="maxRows"/> of the sessions whose recorded sign-in (<see cref="StoredSession.SignIn"/>)
    /// matches <paramref name="filter"/>, live or expired, except the one under <paramref name="exceptKey"/>, in one short
    /// statement (an index serves each kind of filter); the caller repeats it until it returns no row.
    /// </summary>
    /// <param name="filter">Which sign-ins.</param>
    /// <param name="exceptKey">The key of a session to keep, or <see langword="null"/>.</param>
    /// <param name="maxRows">The most rows to delete.</param>
    /// <param name="cancellationToken">Cancels the delete.</param>
    /// <returns>The rows deleted (at most <paramref name="maxRows"/>).</returns>
    Task<IReadOnlyList<SessionLifetime>> DeleteBySignInAsync(SessionSignInFilter filter, byte[]? exceptKey, int maxRows, CancellationToken cancellationToken = default);

    /// <summary>Deletes a session, live or expired.</summary>
    /// <param name="key">The SHA-256 hash of the secret session ID.</param>
    /// <param name="cancellationToken">Cancels the delete.</param>
    /// <returns>The row deleted, or <see langword="null"/> when there was none.</returns>
    Task<SessionLifetime?> DeleteAsync(byte[] key, CancellationToken cancellationToken = default);

    /// <summary>
    /// Lists at most <paramref name="maxRows"/> expired rows, by expiry then key, starting after <paramref name="after"/>
    /// (keyset paging: a cleanup run moves past rows it could not delete). Reads only; a store must not lock or delete here.
    /// A store may page in another order that it keeps from one page to the next of a run (the SQLite store lists a mass
    /// expiry by key, where its deletes cost the fewest page writes).
    /// </summary>
    /// <param name="after">The last row of the previous batch of this run, or <see langword="null"/> for the first.</param>
    /// <param name="maxRows">The most rows to return.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The expired rows; fewer than <paramref name="maxRows"/> means none are left after them.</returns>
    Task<IReadOnlyList<SessionLifetime>> ListExpiredAsync(SessionLifetime? after, int maxRows, CancellationToken cancellationToken = default);

    /// <summary>
    /// Deletes the rows under <paramref name="keys"/> that are still expired, in one short transaction. Rows used again
    /// meanwhile (a server whose clock is behind) stay; a store for several servers skips rows another server's cleaner is
    /// deleting at that moment rather than wait for them.
    /// </summary>
    /// <param name="keys">Keys that <see cref="ListExpiredAsync"/> returned.</param>
    /// <param name="cancellationToken">Cancels the delete.</param>
    /// <returns>The keys deleted.</returns>
    Task<IReadOnlyList<byte[]>> DeleteExpiredAsync(IReadOnlyList<byte[]> keys, CancellationToken cancellationToken = default);
}
