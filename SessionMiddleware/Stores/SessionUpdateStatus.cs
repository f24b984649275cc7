namespace SessionMiddleware;

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
