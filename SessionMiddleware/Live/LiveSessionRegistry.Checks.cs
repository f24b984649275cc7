using SessionMiddleware.Ids;

namespace SessionMiddleware.Live;

/// <summary>The registry's checks against the store: expiry, after a gap in the feed, and activity over a connection.</summary>
internal sealed partial class LiveSessionRegistry
{
    private long _storeChecks;

    /// <summary>How many rows the registry loaded to check a held session (expiry, a feed's gap, activity).</summary>
    internal long StoreChecks => Interlocked.Read(ref _storeChecks);

    /// <summary>
    /// Checks the sessions whose known expiry has passed: each one's row is loaded; one found gone or expired ends, one
    /// used meanwhile (here or on another server) gets its new expiry. One load per session at its expiry, none before.
    /// </summary>
    /// <param name="cancellationToken">Cancels the check.</param>
    /// <returns>How many sessions ended.</returns>
    public Task<int> CheckExpiredAsync(CancellationToken cancellationToken)
    {
        var now = _timeProvider.GetUtcNow();
        var due = Snapshot(s => s.ExpiresAt <= now && !s.HasEnded);
        return due.Count == 0 ? Task.FromResult(0) : CheckAsync(due, cancellationToken);
    }

    /// <inheritdoc/>
    public async Task ResynchronizeAsync(CancellationToken cancellationToken)
    {
        var held = Snapshot();
        if (held.Count > 0)
        {
            var ended = await CheckAsync(held, cancellationToken).ConfigureAwait(false);
            LiveLog.Resynchronized(_logger, held.Count, ended);
        }
    }

    private async Task<int> CheckAsync(List<LiveSession> sessions, CancellationToken cancellationToken)
    {
        var ended = 0;
        foreach (var session in sessions)
        {
            if (session.Key is not { } key || session.HasEnded)
            {
                continue;
            }

            Interlocked.Increment(ref _storeChecks);
            var row = await _store.LoadAsync(key, cancellationToken).ConfigureAwait(false);
            if (row is null || IsExpired(row))
            {
                EndChecked(session);
                ended++;
            }
            else
            {
                session.ExpiresAt = KnownExpiry(row);
            }
        }

        return ended;
    }

    /// <summary>
    /// Activity over a connection: once <see cref="ServerSideSessionOptions.TouchInterval"/> has passed since the last,
    /// the row is loaded and touched, its expiry extended as a request's touch would (never shortened: a remembered
    /// sign-in keeps its own). A row found gone ends the session. A store failure is logged; the session stays open.
    /// </summary>
    internal async Task RecordActivityAsync(LiveSession session, CancellationToken cancellationToken)
    {
        var now = _timeProvider.GetUtcNow();
        if (!session.ClaimTouch(now, _options.TouchInterval) || session.Key is not { } key)
        {
            return;
        }

        try
        {
            Interlocked.Increment(ref _storeChecks);
            var row = await _store.LoadAsync(key, cancellationToken).ConfigureAwait(false);
            if (row is null || IsExpired(row))
            {
                EndChecked(session);
                return;
            }

            var expiresAt = _expiry.ExpiresAt(row.CreatedAt, keepUntil: row.ExpiresAt);
            if (await _store.TouchAsync(key, expiresAt, cancellationToken).ConfigureAwait(false))
            {
                session.ExpiresAt = expiresAt;
            }
            else
            {
                EndChecked(session);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LiveLog.TouchFailed(_logger, SessionIds.ToPublicId(key), ex);
        }
    }

    private bool IsExpired(StoredSession row) =>
        (row.ExpiresAt is { } e && e <= _timeProvider.GetUtcNow()) || (_options.AbsoluteTimeout is not null && _expiry.IsPastAbsoluteTimeout(row.CreatedAt));

    /// <summary>When a loaded row expires: its own expiry, or by the options when the store reports none.</summary>
    private DateTimeOffset KnownExpiry(StoredSession row) =>
        row.ExpiresAt ?? DateTimeOffset.FromUnixTimeSeconds(Math.Min(
            row.LastAccessAt.ToUnixTimeSeconds() + (long)_options.IdleTimeout.TotalSeconds,
            _options.AbsoluteTimeout is { } a ? row.CreatedAt.ToUnixTimeSeconds() + (long)a.TotalSeconds : long.MaxValue / 2));

    /// <summary>When a session used at <paramref name="lastAccessAt"/> expires by the options (early rather than late: a check then finds it extended).</summary>
    public DateTimeOffset ExpiresAt(DateTimeOffset createdAt, DateTimeOffset lastAccessAt, DateTimeOffset? keepUntil)
    {
        var idle = lastAccessAt + _options.IdleTimeout;
        var expires = keepUntil is { } k && k > idle ? k : idle;
        return _options.AbsoluteTimeout is { } a && createdAt + a < expires ? createdAt + a : expires;
    }
}
