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
