namespace SessionMiddleware.Configuration;

/// <summary>Default values of <see cref="ServerSideSessionOptions"/>, in one place.</summary>
internal static class ServerSideSessionDefaults
{
    public const string ConnectionString = "Data Source=sessions.db";
    public const string TableName = "sessions";
    public const string CookieName = ".ServerSession";
    public const string CookiePath = "/";
    public const int CleanupBatchSize = 100;
    public const int MaxSessionBytes = 256 * 1024;
    public const int RowCacheSize = 10_000;
    public const int NewSessionLimit = 100;
    public static readonly TimeSpan IdleTimeout = TimeSpan.FromMinutes(20);
    public static readonly TimeSpan CleanupInterval = TimeSpan.FromSeconds(60);
    public static readonly TimeSpan TouchInterval = TimeSpan.FromSeconds(60);
    public static readonly TimeSpan BusyTimeout = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan IOTimeout = TimeSpan.FromSeconds(10);
    public static readonly TimeSpan NewSessionLimitWindow = TimeSpan.FromMinutes(1);

    /// <summary>The longest NewSessionLimitWindow: longer windows would keep refused clients out for days.</summary>
    public static readonly TimeSpan MaxNewSessionLimitWindow = TimeSpan.FromDays(1);

    /// <summary>The longest IdleTimeout or AbsoluteTimeout the validator accepts: a longer one is taken for a unit mistake.</summary>
    public static readonly TimeSpan MaxTimeout = TimeSpan.FromDays(365);
}
