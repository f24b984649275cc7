namespace SessionMiddleware.Storage;

/// <summary>The row of <see cref="SessionSql.Statistics"/>.</summary>
internal sealed class SessionTableStatistics
{
    /// <summary>Every row, live or expired.</summary>
    public long Total { get; set; }

    /// <summary>The live rows.</summary>
    public long Live { get; set; }

    /// <summary>The live rows bound to a user.</summary>
    public long LiveBound { get; set; }

    /// <summary>The creation time of the oldest live row, Unix seconds, or <see langword="null"/> when none is live.</summary>
    public long? OldestCreatedAt { get; set; }

    /// <summary>The creation time of the newest live row, Unix seconds, or <see langword="null"/> when none is live.</summary>
    public long? NewestCreatedAt { get; set; }
}
