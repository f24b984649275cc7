namespace SessionMiddleware;

/// <summary>
/// Which live sessions <see cref="ISessionManager.QueryAsync"/> and <see cref="ISessionManager.CountAsync"/> return.
/// Every criterion left <see langword="null"/> matches every session; the criteria set must all hold. Times are
/// compared in whole seconds (the stored precision).
/// </summary>
public sealed record SessionFilter
{
    /// <summary>Only the sessions bound to this user.</summary>
    public string? UserId { get; init; }

    /// <summary><see langword="true"/>: only sessions bound to a user; <see langword="false"/>: only anonymous ones.</summary>
    public bool? IsBound { get; init; }

    /// <summary>Only sessions created after this time.</summary>
    public DateTimeOffset? CreatedAfter { get; init; }

    /// <summary>Only sessions created before this time.</summary>
    public DateTimeOffset? CreatedBefore { get; init; }

    /// <summary>Only sessions last used after this time.</summary>
    public DateTimeOffset? LastAccessAfter { get; init; }

    /// <summary>Only sessions last used before this time.</summary>
    public DateTimeOffset? LastAccessBefore { get; init; }

    /// <summary>Every live session.</summary>
    public static SessionFilter All { get; } = new();
}

/// <summary>One page of a session query: newest first, and the token that continues after its last session.</summary>
/// <param name="Sessions">The sessions, most recently created first (ties by ID).</param>
/// <param name="ContinuationToken">Pass it to the next <see cref="ISessionManager.QueryAsync"/> for the next page; <see langword="null"/> on the last page.</param>
public sealed record SessionPage(IReadOnlyList<SessionInfo> Sessions, string? ContinuationToken);

/// <summary>
/// A position in the order of a session query (creation time descending, then key descending): a page continues
/// with the sessions after it. Keyset paging, so it stays right while rows are added and removed.
/// </summary>
/// <param name="CreatedAt">The creation time of the last session of the previous page, in Unix seconds.</param>
/// <param name="Key">The key (SHA-256 of the secret ID) of that session.</param>
public sealed record SessionCursor(long CreatedAt, byte[] Key);
