namespace SessionMiddleware.Storage;

/// <summary>
/// The idle and absolute limits at one instant, in Unix seconds: a row is live while
/// <c>last_access &gt;= IdleCutoff</c> and <c>created_at &gt;= AbsoluteCutoff</c>.
/// </summary>
/// <param name="Now">"Now" from the <see cref="TimeProvider"/>, in Unix seconds.</param>
/// <param name="IdleCutoff">The oldest last access a live row may have.</param>
/// <param name="AbsoluteCutoff">The oldest creation time a live row may have (<see cref="long.MinValue"/> without an absolute timeout).</param>
internal readonly record struct ExpiryCutoffs(long Now, long IdleCutoff, long AbsoluteCutoff)
{
    public bool IsExpired(long lastAccess, long createdAt) => lastAccess < IdleCutoff || createdAt < AbsoluteCutoff;
}

/// <summary>Turns the timeouts of <see cref="ServerSideSessionOptions"/> into cutoffs at "now"; shared by every store.</summary>
internal sealed class SessionExpiry
{
    private readonly TimeProvider _timeProvider;
    private readonly long _idleSeconds;
    private readonly long? _absoluteSeconds;

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
    public long UnixNow() => _timeProvider.GetUtcNow().ToUnixTimeSeconds();

    /// <summary>The cutoffs at "now".</summary>
    public ExpiryCutoffs Cutoffs()
    {
        var now = UnixNow();
        return new ExpiryCutoffs(now, now - _idleSeconds, _absoluteSeconds is { } a ? now - a : long.MinValue);
    }
}
