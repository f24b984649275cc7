namespace SessionMiddleware.Storage;

/// <summary>
/// "Now" and the timeouts, in Unix seconds, as the parameters <c>@Now</c>, <c>@IdleSeconds</c> and
/// <c>@AbsoluteSeconds</c> of the statements (<see cref="SessionSql.LiveCondition"/>, <see cref="SessionSql.NewExpiry"/>).
/// </summary>
/// <param name="Now">"Now" from the <see cref="TimeProvider"/>, in Unix seconds.</param>
/// <param name="IdleSeconds">The idle timeout.</param>
/// <param name="AbsoluteSeconds">The absolute timeout (a value past any real date without one).</param>
internal readonly record struct ExpiryParameters(long Now, long IdleSeconds, long AbsoluteSeconds)
{
    /// <summary>Whether a row that expires at <paramref name="expiresAt"/> is expired now.</summary>
    /// <param name="expiresAt">The row's <c>expires_at</c>, in Unix seconds.</param>
    /// <returns><see langword="true"/> when the row is expired.</returns>
    public bool IsExpired(long expiresAt) => expiresAt < Now;

    /// <summary>The default expiry of a row used now: now + idle timeout, capped by its creation + absolute timeout.</summary>
    /// <param name="createdAt">The row's creation time, in Unix seconds.</param>
    /// <returns>The expiry, in Unix seconds.</returns>
    public long DefaultExpiresAt(long createdAt) => Math.Min(Now + IdleSeconds, createdAt + AbsoluteSeconds);
}

/// <summary>
/// Turns the idle and absolute timeouts into <see cref="ExpiryParameters"/> at "now", so that every store ends
/// sessions at the same moment.
/// </summary>
internal sealed class SessionExpiry
{
    // Without an absolute timeout: far enough to never cap, near enough that created_at + it never overflows.
    private const long NoAbsoluteTimeout = long.MaxValue / 4;

    private readonly TimeProvider _timeProvider;
    private readonly long _idleSeconds;
    private readonly long _absoluteSeconds;

    /// <summary>Creates the expiry rules of the timeouts, reading "now" from <paramref name="timeProvider"/>.</summary>
    /// <param name="idleTimeout"><see cref="ServerSideSessionOptions.IdleTimeout"/>.</param>
    /// <param name="absoluteTimeout"><see cref="ServerSideSessionOptions.AbsoluteTimeout"/>, or <see langword="null"/> for none.</param>
    /// <param name="timeProvider">The clock; never the database's.</param>
    public SessionExpiry(TimeSpan idleTimeout, TimeSpan? absoluteTimeout, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        _timeProvider = timeProvider;
        _idleSeconds = (long)Math.Ceiling(idleTimeout.TotalSeconds);
        _absoluteSeconds = absoluteTimeout is { } a ? (long)Math.Ceiling(a.TotalSeconds) : NoAbsoluteTimeout;
    }

    /// <summary>"Now" in Unix seconds.</summary>
    /// <returns>The current time from the <see cref="TimeProvider"/>, in whole Unix seconds.</returns>
    public long UnixNow() => _timeProvider.GetUtcNow().ToUnixTimeSeconds();

    /// <summary>The parameters at "now".</summary>
    /// <returns>"Now" and the timeouts, in seconds.</returns>
    public ExpiryParameters Parameters() => new(UnixNow(), _idleSeconds, _absoluteSeconds);

    /// <summary>
    /// When a row used now expires: its default expiry (<see cref="ExpiryParameters.DefaultExpiresAt"/>), or
    /// <paramref name="keepUntil"/> when that is later (a remembered sign-in), never past creation +
    /// <see cref="ServerSideSessionOptions.AbsoluteTimeout"/>.
    /// </summary>
    /// <param name="createdAt">The row's creation time.</param>
    /// <param name="keepUntil">The time the row should live until, if any (capped by the absolute timeout too).</param>
    /// <returns>The expiry.</returns>
    public DateTimeOffset ExpiresAt(DateTimeOffset createdAt, DateTimeOffset? keepUntil)
    {
        var created = createdAt.ToUnixTimeSeconds();
        var expires = Parameters().DefaultExpiresAt(created);
        if (keepUntil is { } k && k.ToUnixTimeSeconds() > expires)
        {
            expires = Math.Min(k.ToUnixTimeSeconds(), created + _absoluteSeconds);
        }

        return DateTimeOffset.FromUnixTimeSeconds(expires);
    }

    /// <summary>
    /// Whether a session created at <paramref name="createdAt"/> is past <see cref="ServerSideSessionOptions.AbsoluteTimeout"/>
    /// now, whatever its recorded expiry (a row written before the timeout was set or shortened).
    /// </summary>
    /// <param name="createdAt">The session's creation time.</param>
    /// <returns><see langword="true"/> when the session has outlived the absolute timeout.</returns>
    public bool IsPastAbsoluteTimeout(DateTimeOffset createdAt) => createdAt.ToUnixTimeSeconds() + _absoluteSeconds < UnixNow();
}
