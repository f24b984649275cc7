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
    DateTimeOffset? ExpiresAt = null)
{
    /// <summary>The sign-in the row recorded, or <see langword="null"/> when no one signed in to this session.</summary>
    public SessionSignIn? SignIn { get; init; }

    /// <summary>
    /// From <see cref="IServerSideSessionStore.CreateAsync"/> under <see cref="NewSession.UserLimit"/>: the user's other
    /// sessions the insert ended to stay within the cap; empty otherwise.
    /// </summary>
    public IReadOnlyList<SessionLifetime> Displaced { get; init; } = [];
}
