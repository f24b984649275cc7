using SessionMiddleware.Ids;
using SessionMiddleware.Cookies;
using SessionMiddleware.Diagnostics;
using SessionMiddleware.Logging;
using SessionMiddleware.Session;

namespace SessionMiddleware.Middleware;

/// <summary>The last step of a request: commit what it changed, one store call per state of the session.</summary>
internal sealed partial class RequestSession
{
    /// <summary>Whether committing now needs the store at all (anything to delete, create, write, or an access to record).</summary>
    private bool HasStoreWork(ServerSideSession session) =>
        session.AbandonedKey is not null ||
        session.RenewFromKey is not null ||
        session.IsModified ||
        (session.IsNew ? session.HasContent : !_touched && IsTouchDue(session, _runtime.Now()));

    /// <summary>Commits whatever this request has not committed yet.</summary>
    public async Task CommitAsync(CancellationToken cancellationToken)
    {
        // What a commit does, by the session's state; an abandon is done first, then the rest applies to what follows it.
        //   state                         store call                               cookie
        //   discarded, or gone            none                                     -
        //   abandoned                     Delete(old key)                          expired, unless the session has content again
        //   new and empty                 none                                     none
        //   new with content              Create; after the response started: none (logged), no cookie could be sent
        //   renewed (RegenerateId)        Renew(old key -> new key), merged        set; after the response started: renewal
        //                                                                          cancelled, written as modified
        //   modified                      Update(version), merged on conflict      refreshed if persistent
        //                                 (unreadable data is replaced only then; a renewal or touch keeps it)
        //   untouched                     Touch, once TouchInterval has passed     refreshed if persistent
        //   row gone, renewed here        follow it: merged into the new key       none (the renewing request sent it)
        //     meanwhile (RecentRenewals)  a sign-in of the same user takes the     the new one
        //                                 other's renewal as its own
        //   row gone otherwise            a write throws (5xx); a touch stops      none: only Abandon expires it
        var session = Session;
        if (_deadKey is { } deadKey && !_discarded && session.IsNew && !session.HasContent && !Context.Response.HasStarted)
        {
            _deadKey = null;
            await ExpireDeadCookieAsync(deadKey, cancellationToken).ConfigureAwait(false);
        }

        if (_discarded || !HasStoreWork(session))
        {
            // Most read-only requests end here: no store call, so no timeout token source either.
            return;
        }

        if (session.IsGone && session.AbandonedKey is null)
        {
            // Changed again after its row was found gone: the change cannot be written.
            throw GoneException(session.Key!);
        }

        using var timeout = _runtime.StartIOTimeout(cancellationToken);
        var token = timeout.Token;

        if (session.AbandonedKey is { } abandoned)
        {
            await DeleteAbandonedAsync(session, abandoned, token).ConfigureAwait(false);
        }

        await PrepareSignInAsync(session).ConfigureAwait(false);
        try
        {
            await CommitSessionAsync(session, token).ConfigureAwait(false);
        }
        catch (SessionLimitExceededException refusal)
        {
            SignInRefused(refusal);
            throw;
        }

        await EndDisplacedAsync().ConfigureAwait(false);
    }

    /// <summary>The commit of the session that follows any abandon: create, renew, write or touch, by its state.</summary>
    private Task CommitSessionAsync(ServerSideSession session, CancellationToken cancellationToken)
    {
        if (session.IsNew)
        {
            return CreateAsync(session, cancellationToken);
        }

        if (session.RenewFromKey is { } renewFrom)
        {
            return RenewAsync(session, renewFrom, cancellationToken);
        }

        if (session.IsModified)
        {
            return WriteAsync(session, renew: false, cancellationToken);
        }

        return _touched ? Task.CompletedTask : TouchIfDueAsync(session, cancellationToken);
    }

    /// <summary>
    /// The request's cookie names no live session (revoked, expired, cleaned, unknown) and the request stores none: the
    /// cookie is expired so that the browser stops sending it. Not when this process renewed that ID lately: the browser
    /// may already hold the new cookie (the renewal's response) and this one would delete it. The renewal is recorded
    /// under the key's commit lock, so a renewal still being committed is waited for.
    /// </summary>
    private async Task ExpireDeadCookieAsync(byte[] deadKey, CancellationToken cancellationToken)
    {
        using (await _runtime.CommitLocks.EnterAsync(deadKey, cancellationToken).ConfigureAwait(false))
        {
            if (_runtime.Renewals.TryGet(deadKey, out _))
            {
                return;
            }
        }

        Cookies.Expire(Context);
    }

    /// <summary>
    /// Deletes the abandoned row (or, for a sign-out, the row a concurrent renewal of the same user moved it to) and
    /// raises its end; the cookie is expired unless the session has content again.
    /// </summary>
    private async Task DeleteAbandonedAsync(ServerSideSession session, byte[] abandoned, CancellationToken cancellationToken)
    {
        var deleted = await _runtime.Store.DeleteAsync(abandoned, cancellationToken).ConfigureAwait(false);
        if (deleted is null && session.AbandonedUserId is { } signedOutUser)
        {
            deleted = await DeleteRenewedAsync(abandoned, signedOutUser, cancellationToken).ConfigureAwait(false);
        }

        Log.SessionAbandoned(Logger, SessionIds.ToPublicId(abandoned));
        if (deleted is not null)
        {
            var reason = _runtime.Events.ReasonFor(deleted, session.SignedOut ? SessionEndReason.SignedOut : SessionEndReason.Abandoned);
            await _runtime.Events.EndedAsync(deleted, reason, Context, Context.RequestAborted).ConfigureAwait(false);
        }

        session.MarkAbandonCommitted();
        if (!session.HasContent)
        {
            Cookies.Expire(Context);
        }
    }

    /// <summary>
    /// Writes the renewal (<c>RegenerateId</c>) and raises it; after the response started the new cookie cannot be sent,
    /// so the renewal is given up and only the change set is written.
    /// </summary>
    private async Task RenewAsync(ServerSideSession session, byte[] renewFrom, CancellationToken cancellationToken)
    {
        if (Context.Response.HasStarted)
        {
            Log.RenewAfterResponseStarted(Logger, SessionIds.ToPublicId(renewFrom));
            session.CancelRenewal();
            if (session.IsModified)
            {
                await WriteAsync(session, renew: false, cancellationToken).ConfigureAwait(false);
            }

            return;
        }

        var previousId = await WriteAsync(session, renew: true, cancellationToken).ConfigureAwait(false);
        if (previousId is not null)
        {
            // Raised once the commit lock is let go: a handler may revoke or list this user's sessions.
            await _runtime.Events.RenewedAsync(session.Id, previousId, session.UserId, Context, Context.RequestAborted).ConfigureAwait(false);
        }
    }

    private async Task CreateAsync(ServerSideSession session, CancellationToken cancellationToken)
    {
        if (!session.HasContent)
        {
            return;
        }

        if (Context.Response.HasStarted)
        {
            Log.NewSessionAfterResponseStarted(Logger);
            return;
        }

        if (LimitsCreation && !_runtime.NewSessions.MayCreate(Context, out var retryAfter))
        {
            // NewSessionLimit: nothing is stored, and the middleware answers 429.
            _creationRefusedFor = retryAfter;
            _discarded = true;
            return;
        }

        session.EnsureId();
        var row = NewRow(session);
        var stored = await _runtime.Store.CreateAsync(row, cancellationToken).ConfigureAwait(false);
        _displaced = stored.Displaced;
        Metrics.SessionCreated();
        Metrics.Commit(SessionMetrics.OutcomeCommitted);
        session.MarkCreated(stored);
        session.MarkSignInStored(row.SignIn);
        _touched = true;
        Log.SessionCreated(Logger, session.Id);
        Cookies.Set(Context, session.SecretId, ExpiresAt(session));
        await _runtime.Events.CreatedAsync(session.Id, session.UserId, Context, Context.RequestAborted).ConfigureAwait(false);
    }

    // The store records whole seconds: a touch within the second already recorded would write the same value again.
    private bool IsTouchDue(ServerSideSession session, DateTimeOffset now) =>
        now > session.LastAccessAt && now - session.LastAccessAt >= _runtime.Options.TouchInterval;

    private async Task TouchIfDueAsync(ServerSideSession session, CancellationToken cancellationToken)
    {
        var now = _runtime.Now();
        if (!IsTouchDue(session, now))
        {
            return;
        }

        _touched = true;
        bool found;
        try
        {
            found = await _runtime.Store.TouchAsync(session.Key!, ExpiresAt(session), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Not recording an access loses no data (the session just ages from its last recorded use), so the
            // request goes on; this includes IOTimeout's cancellation.
            Log.TouchFailed(Logger, session.Id, ex);
            return;
        }

        if (found)
        {
            session.MarkTouched(now);
            if (!session.FollowsRenewal)
            {
                Cookies.Refresh(Context, session.SecretId, ExpiresAt(session));
            }

            return;
        }

        // Nothing of this request is lost. A renewal in progress in this process holds the key's commit lock until it
        // is recorded, so the lookup waits for it; the renewed row was just written, so it needs no touch.
        using var turn = await _runtime.CommitLocks.EnterAsync(session.Key!, cancellationToken).ConfigureAwait(false);
        if (FollowRenewal(session, session.Key!, renewing: false) is null)
        {
            Log.SessionGoneAtCommit(Logger, session.Id);
            session.MarkGone();
        }
    }

    /// <summary>
    /// A sign-out found no row under the ID it presented: when a concurrent request of this process renewed that session
    /// a moment ago and it still belongs to the same user, the sign-out ends it under its new ID, so the signed-in
    /// session does not outlive the sign-out. A session a renewal gave to another user is left alone.
    /// </summary>
    private async Task<SessionLifetime?> DeleteRenewedAsync(byte[] abandonedKey, string userId, CancellationToken cancellationToken)
    {
        if (!_runtime.Renewals.TryGet(abandonedKey, out _))
        {
            // A renewal still committing holds the key's commit lock until it is recorded: wait for it once.
            (await _runtime.CommitLocks.EnterAsync(abandonedKey, cancellationToken).ConfigureAwait(false)).Dispose();
        }

        var key = abandonedKey;
        for (var hops = 0; hops < SessionRuntime.MaxCommitAttempts && _runtime.Renewals.TryGet(key, out var renewal); hops++)
        {
            if (!string.Equals(renewal.UserId, userId, StringComparison.Ordinal))
            {
                return null;
            }

            key = renewal.NewKey;
            var deleted = await _runtime.Store.DeleteAsync(key, cancellationToken).ConfigureAwait(false);
            if (deleted is not null)
            {
                Log.SignOutFollowedRenewal(Logger, SessionIds.ToPublicId(abandonedKey), SessionIds.ToPublicId(key));
                return deleted;
            }
        }

        return null;
    }
}
