namespace SessionMiddleware.Live;

/// <summary>
/// One holder's use of a <see cref="LiveSession"/> (a hub connection, a circuit): its end as a token, the check a hub
/// method makes before it runs, and activity that keeps the session alive. Disposing it lets the registry forget the
/// session once no holder is left.
/// </summary>
internal sealed class LiveSessionLease : IDisposable
{
    private readonly LiveSessionRegistry? _registry;
    private int _disposed;

    internal LiveSessionLease(LiveSessionRegistry? registry, LiveSession session)
    {
        _registry = registry;
        Session = session;
    }

    /// <summary>The session held.</summary>
    public LiveSession Session { get; }

    /// <summary>Cancelled when the session ends.</summary>
    public CancellationToken Ended => Session.Ended;

    /// <summary>Whether the session has ended.</summary>
    public bool HasEnded => Session.HasEnded;

    /// <summary>The session's public ID now (it follows renewals), for logs.</summary>
    public string PublicId => Session.Key is { } key ? Ids.SessionIds.ToPublicId(key) : "(ended)";

    /// <summary>
    /// Records activity on the connection: once <see cref="ServerSideSessionOptions.TouchInterval"/> has passed since the
    /// last, the session's row is touched (so a user active only over a connection is not idled out); a row found gone
    /// ends the session. A store failure is logged and the session stays open.
    /// </summary>
    /// <param name="cancellationToken">Cancels the touch.</param>
    /// <returns>A task that completes at once when no touch is due.</returns>
    public Task RecordActivityAsync(CancellationToken cancellationToken = default) =>
        _registry is null || HasEnded ? Task.CompletedTask : _registry.RecordActivityAsync(Session, cancellationToken);

    /// <summary>Lets the session go: the registry forgets it once no holder is left.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _registry?.Release(Session);
        }
    }
}
