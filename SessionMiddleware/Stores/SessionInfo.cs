namespace SessionMiddleware;

/// <summary>What the server knows about one session, for a "your sessions" page or an admin tool. Holds no secret.</summary>
/// <param name="Id">The session's public ID (<c>ISession.Id</c>): lowercase hex of the SHA-256 of the secret ID.</param>
/// <param name="UserId">The user the session is bound to, if any.</param>
/// <param name="CreatedAt">When the session was created.</param>
/// <param name="LastAccessAt">When the session was last recorded as used.</param>
/// <param name="IpAddress">The client's IP address when the session was created or its ID last renewed, if recorded.</param>
/// <param name="UserAgent">The client's User-Agent (truncated) when the session was created or its ID last renewed, if recorded.</param>
public sealed record SessionInfo(string Id, string? UserId, DateTimeOffset CreatedAt, DateTimeOffset LastAccessAt, string? IpAddress, string? UserAgent);
