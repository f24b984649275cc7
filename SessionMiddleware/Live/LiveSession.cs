namespace SessionMiddleware.Live;

/// <summary>
/// One session that something in this process holds open (hub connections, circuits, the app's
/// <see cref="IServerSideSession.Ended"/> token): its current key, the user it was opened as, when it is known to expire,
/// and the token cancelled when it ends. Its key follows renewals of the same user; it ends on any other change.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The token source has no timer; its token is handed to connections and the app, and must stay usable after the session is forgotten.")]
internal sealed class LiveSession
{
    private readonly CancellationTokenSource _ended = new();
    private int _hasEnded;
    private long _expiresAtTicks;
    private long _lastActivityTicks;

    public LiveSession(string? userId, DateTimeOffset expiresAt, DateTimeOffset lastActivityAt)
    {
        UserId = userId;
        _expiresAtTicks = expiresAt.UtcTicks;
        _lastActivityTicks = lastActivityAt.UtcTicks;
    }

    /// <summary>The session's key now (it follows renewals), or <see langword="null"/> until a new session is stored.</summary>
    public byte[]? Key { get; set; }

    /// <summary>The dictionary key of <see cref="Key"/> (upper-case hex).</summary>
    public string? KeyHex { get; set; }

    /// <summary>The user the session was bound to when it was opened; a renewal to another user ends it.</summary>
    public string? UserId { get; }

    /// <summary>How many holders (connections, circuits) still use it; the registry forgets it at zero unless <see cref="Pinned"/>.</summary>
    public int Holders { get; set; }

    /// <summary>Whether the app holds its <see cref="IServerSideSession.Ended"/> token: kept until the session ends.</summary>
    public bool Pinned { get; set; }

    /// <summary>When the session expires as far as this process knows (its row may have been extended elsewhere since).</summary>
    public DateTimeOffset ExpiresAt
    {
        get => new(Interlocked.Read(ref _expiresAtTicks), TimeSpan.Zero);
        set => Interlocked.Exchange(ref _expiresAtTicks, value.UtcTicks);
    }

    /// <summary>Cancelled once, when the session ends.</summary>
    public CancellationToken Ended => _ended.Token;

    /// <summary>Whether the session has ended: checked before a hub method runs.</summary>
    public bool HasEnded => Volatile.Read(ref _hasEnded) != 0;

    /// <summary>
    /// Claims the touch that activity now is due for: true for one caller once <paramref name="interval"/> has passed
    /// since the last one (then recorded as now).
    /// </summary>
    public bool ClaimTouch(DateTimeOffset now, TimeSpan interval)
    {
        var last = Interlocked.Read(ref _lastActivityTicks);
        return now.UtcTicks - last >= interval.Ticks &&
            Interlocked.CompareExchange(ref _lastActivityTicks, now.UtcTicks, last) == last;
    }

    /// <summary>Marks the session ended and cancels <see cref="Ended"/>: true for the first call only.</summary>
    /// <exception cref="AggregateException">A callback registered on <see cref="Ended"/> threw (each callback still ran).</exception>
    public bool End()
    {
        if (Interlocked.Exchange(ref _hasEnded, 1) != 0)
        {
            return false;
        }

        _ended.Cancel();
        return true;
    }
}
