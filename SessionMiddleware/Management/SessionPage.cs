namespace SessionMiddleware;

/// <summary>One page of a session query: newest first, and the token that continues after its last session.</summary>
/// <param name="Sessions">The sessions, most recently created first (ties by ID).</param>
/// <param name="ContinuationToken">Pass it to the next <see cref="ISessionManager.QueryAsync"/> for the next page; <see langword="null"/> on the last page.</param>
public sealed record SessionPage(IReadOnlyList<SessionInfo> Sessions, string? ContinuationToken);
