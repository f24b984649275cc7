namespace SessionMiddleware;

/// <summary>A session row as a store returns it.</summary>
/// <param name="Key">The SHA-256 hash of the secret session ID.</param>
/// <param name="Data">The serialized session data.</param>
/// <param name="Version">The row's version, incremented by every data change.</param>
/// <param name="UserId">The user the session is bound to, if any.</param>
/// <param name="CreatedAt">When the session was created (whole seconds).</param>
/// <param name="LastAccessAt">When the session was last recorded as used (whole seconds).</param>
/// <param name="ExpiresAt">When the row expires unless used again (whole seconds); <see langword="null"/> when the store does not say.</param>
public sealed record StoredSession(
    byte[] Key,
    byte[] Data,
    long Version,
    string? UserId,
    DateTimeOffset CreatedAt,
    DateTimeOffset LastAccessAt,
    DateTimeOffset? ExpiresAt = null);

/// <summary>A session to insert.</summary>
/// <param name="Key">The SHA-256 hash of the new secret session ID.</param>
/// <param name="Data">The serialized session data.</param>
/// <param name="UserId">The user the session is bound to, if any.</param>
/// <param name="IpAddress">The client's IP address when the session was created, if recorded.</param>
/// <param name="UserAgent">The client's User-Agent when the session was created, if recorded.</param>
/// <param name="ExpiresAt">
/// When the row expires unless used again; <see langword="null"/> for the store's default (now + idle timeout, capped by
/// creation + absolute timeout).
/// </param>
public sealed record NewSession(
    byte[] Key,
    byte[] Data,
    string? UserId,
    string? IpAddress,
    string? UserAgent,
    DateTimeOffset? ExpiresAt = null)
{
    /// <summary>The session as <see cref="IServerSideSessionStore.CreateAsync"/> returns it once stored: version 1, created and last accessed at <paramref name="unixNow"/>.</summary>
    /// <param name="unixNow">When it was stored, in Unix seconds.</param>
    /// <param name="expiresAt">When it expires, in Unix seconds.</param>
    /// <returns>The stored session.</returns>
    public StoredSession AsCreated(long unixNow, long expiresAt)
    {
        var at = DateTimeOffset.FromUnixTimeSeconds(unixNow);
        return new StoredSession(Key, Data, 1, UserId, at, at, DateTimeOffset.FromUnixTimeSeconds(expiresAt));
    }
}

/// <summary>What became of an optimistic update.</summary>
public enum SessionUpdateStatus
{
    /// <summary>The row had the expected version and now holds the new data.</summary>
    Committed,

    /// <summary>The row exists but another commit changed it since it was loaded; nothing was written.</summary>
    Conflict,

    /// <summary>The row is gone (revoked, abandoned, expired or cleaned); nothing was written.</summary>
    NotFound,
}

/// <summary>The outcome of <see cref="IServerSideSessionStore.UpdateAsync"/>.</summary>
/// <param name="Status">What happened.</param>
/// <param name="Version">The row's version after the update when <see cref="SessionUpdateStatus.Committed"/>; otherwise 0.</param>
public readonly record struct SessionUpdateResult(SessionUpdateStatus Status, long Version);

/// <summary>
/// The key, the user and the lifetime of a session row: what a store returns for the rows it deleted or found expired, so
/// that each session's end is raised (<see cref="ServerSideSessionEvents.OnEnded"/>) with its user and reason.
/// </summary>
/// <param name="Key">The SHA-256 hash of the secret session ID.</param>
/// <param name="UserId">The user the session was bound to, if any.</param>
/// <param name="CreatedAt">When the session was created (whole seconds).</param>
/// <param name="ExpiresAt">When the row expires or expired (whole seconds).</param>
public sealed record SessionLifetime(byte[] Key, string? UserId, DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt);
