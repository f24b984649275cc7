namespace SessionMiddleware;

/// <summary>
/// The key, the user and the lifetime of a session row: what a store returns for the rows it deleted or found expired, so
/// that each session's end is raised (<see cref="ServerSideSessionEvents.OnEnded"/>) with its user and reason.
/// </summary>
/// <param name="Key">The SHA-256 hash of the secret session ID.</param>
/// <param name="UserId">The user the session was bound to, if any.</param>
/// <param name="CreatedAt">When the session was created (whole seconds).</param>
/// <param name="ExpiresAt">When the row expires or expired (whole seconds).</param>
public sealed record SessionLifetime(byte[] Key, string? UserId, DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt);
