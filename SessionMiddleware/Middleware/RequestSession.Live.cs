using SessionMiddleware.Live;

namespace SessionMiddleware.Middleware;

/// <summary>The request's part in <see cref="IServerSideSession.Ended"/>: a stored session is held at once, a new one once stored.</summary>
internal sealed partial class RequestSession
{
    private CancellationToken? _ended;
    private LiveSession? _pendingLive;

    /// <inheritdoc/>
    public CancellationToken HoldUntilEnded()
    {
        if (_ended is { } token)
        {
            return token;
        }

        var session = Session;
        if (session is { IsNew: false, IsGone: false, RenewFromKey: null, Key: { } key })
        {
            token = _runtime.Live.HoldUntilEnded(key, session.UserId, _runtime.Live.ExpiresAt(session.CreatedAt, session.LastAccessAt, session.KeepUntil));
        }
        else
        {
            // New, or renewed in this request: held under the key and user the commit stores.
            _pendingLive = _runtime.Live.NewPending(session.UserId);
            token = _pendingLive.Ended;
        }

        _ended = token;
        return token;
    }

    /// <summary>
    /// After a commit: a session whose token is pending is held under the key it was stored with; one not stored by the
    /// request's last commit (<paramref name="final"/>) never existed, and its token is cancelled.
    /// </summary>
    public void SettleLiveSession(bool final)
    {
        if (_pendingLive is not { } pending)
        {
            return;
        }

        var session = Session;
        if (!_discarded && session is { IsNew: false, IsGone: false, RenewFromKey: null, Key: { } key } && string.Equals(session.UserId, pending.UserId, StringComparison.Ordinal))
        {
            _pendingLive = null;
            _runtime.Live.Attach(pending, key, _runtime.Live.ExpiresAt(session.CreatedAt, session.LastAccessAt, session.KeepUntil));
        }
        else if (final || !string.Equals(session.UserId, pending.UserId, StringComparison.Ordinal))
        {
            _pendingLive = null;
            _runtime.Live.EndPending(pending);
        }
    }
}
