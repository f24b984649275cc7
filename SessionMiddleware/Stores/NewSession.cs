namespace SessionMiddleware;

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
    /// <summary>
    /// The sign-in the row records (<see cref="StoredSession.SignIn"/>): set by a sign-in, carried over by a renewal that
    /// does not sign in; <see langword="null"/> for a session no one signed in to.
    /// </summary>
    public SessionSignIn? SignIn { get; init; }

    /// <summary>
    /// When this insert or renewal signs <see cref="UserId"/> in under a cap (<see cref="ServerSideSessionOptions.MaxSessionsPerUser"/>):
    /// the store counts the user's other live sessions in the same transaction (serialized per user) and, at the cap,
    /// deletes the least recently used (returned in <see cref="StoredSession.Displaced"/> or
    /// <see cref="SessionUpdateResult.Displaced"/>) or throws <see cref="SessionLimitExceededException"/> and stores nothing.
    /// </summary>
    public SessionUserLimit? UserLimit { get; init; }

    /// <summary>The session as <see cref="IServerSideSessionStore.CreateAsync"/> returns it once stored: version 1, created and last accessed at <paramref name="unixNow"/>.</summary>
    /// <param name="unixNow">When it was stored, in Unix seconds.</param>
    /// <param name="expiresAt">When it expires, in Unix seconds.</param>
    /// <returns>The stored session.</returns>
    public StoredSession AsCreated(long unixNow, long expiresAt)
    {
        var at = DateTimeOffset.FromUnixTimeSeconds(unixNow);
        return new StoredSession(Key, Data, 1, UserId, at, at, DateTimeOffset.FromUnixTimeSeconds(expiresAt)) { SignIn = SignIn };
    }
}
