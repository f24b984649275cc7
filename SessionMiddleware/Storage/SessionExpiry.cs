namespace SessionMiddleware.Storage;

/// <summary>
/// The idle and absolute limits at one instant, in Unix seconds: a row is live while
/// <c>last_access &gt;= IdleCutoff</c> and <c>created_at &gt;= AbsoluteCutoff</c>
/// (<see cref="SessionSql.LiveCondition"/>).
/// </summary>
/// <param name="Now">"Now" from the <see cref="TimeProvider"/>, in Unix seconds.</param>
/// <param name="IdleCutoff">The oldest last access a live row may have.</param>
/// <param name="AbsoluteCutoff">The oldest creation time a live row may have (<see cref="long.MinValue"/> without an absolute timeout).</param>
public readonly record struct ExpiryCutoffs(long Now, long IdleCutoff, long AbsoluteCutoff)
{
    /// <summary>Whether a row with these timestamps is past its idle or absolute timeout.</summary>
    /// <param name="lastAccess">The row's last access, in Unix seconds.</param>
    /// <param name="createdAt">The row's creation time, in Unix seconds.</param>
    /// <returns><see langword="true"/> when the row is expired.</returns>
    public bool IsExpired(long lastAccess, long createdAt) => lastAccess < IdleCutoff || createdAt < AbsoluteCutoff;
}

/// <summary>
/// Turns the timeouts of <see cref="ServerSideSessionOptions"/> into <see cref="ExpiryCutoffs"/> at "now", so that
/// every store ends sessions at the same moment. For store authors.
/// </summary>
public sealed class SessionExpiry
{
    private readonly TimeProvider _timeProvider;
    private readonly long _idleSeconds;
    private readonly long? _absoluteSeconds;

    /// <summary>Creates the expiry rules of <paramref name="options"/>, reading "now" from <paramref name="timeProvider"/>.</summary>
    /// <param name="options">The session options (<see cref="ServerSideSessionOptions.IdleTimeout"/>, <see cref="ServerSideSessionOptions.AbsoluteTimeout"/>).</param>
    /// <param name="timeProvider">The clock; never the database's.</param>
    public SessionExpiry(ServerSideSessionOptions options, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        _timeProvider = timeProvider;
        _idleSeconds = (long)Math.Ceiling(options.IdleTimeout.TotalSeconds);
        _absoluteSeconds = options.AbsoluteTimeout is { } a ? (long)Math.Ceiling(a.TotalSeconds) : null;
    }

    /// <summary>Whether sessions also end a fixed time after their creation.</summary>
    public bool HasAbsoluteTimeout => _absoluteSeconds is not null;

    /// <summary>"Now" in Unix seconds.</summary>
    /// <returns>The current time from the <see cref="TimeProvider"/>, in whole Unix seconds.</returns>
    public long UnixNow() => _timeProvider.GetUtcNow().ToUnixTimeSeconds();

    /// <summary>The cutoffs at "now".</summary>
    /// <returns>"Now" and the oldest last access and creation time a live row may have.</returns>
    public ExpiryCutoffs Cutoffs()
    {
        var now = UnixNow();
        return new ExpiryCutoffs(now, now - _idleSeconds, _absoluteSeconds is { } a ? now - a : long.MinValue);
    }
}
