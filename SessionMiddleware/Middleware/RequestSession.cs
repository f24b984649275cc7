using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using SessionMiddleware.Cookies;
using SessionMiddleware.Diagnostics;
using SessionMiddleware.Logging;
using SessionMiddleware.Session;

namespace SessionMiddleware.Middleware;

/// <summary>
/// One request's session and its way back to the store: owns the <see cref="ServerSideSession"/> (whose
/// <c>CommitAsync</c> runs <see cref="CommitAsync"/>) and writes it back, with the cookie that goes with it.
/// Store failures are thrown; the middleware decides what the client is told.
/// </summary>
internal sealed class RequestSession : ISessionOwner
{
    /// <summary>The largest row a commit leaves beside its commit lock for the next commit of the session (see <see cref="WriteAsync"/>).</summary>
    private const int MaxRememberedRowBytes = 16 * 1024;

    private readonly SessionRuntime _runtime;
    private bool _touched;
    private bool _discarded;
    private TimeSpan? _creationRefusedFor;
    private byte[]? _deadKey;

    /// <summary>Who commits a change made to the session now.</summary>
    public enum Phase
    {
        /// <summary>
        /// Loaded by the ticket store because authentication runs before <c>UseServerSideSessions()</c>: the middleware
        /// takes the session over and commits it; should the response start before it does, the session commits itself.
        /// </summary>
        LoadedEarly,

        /// <summary>The middleware runs the rest of the pipeline and commits when the response starts and at its end.</summary>
        InPipeline,

        /// <summary>No commit of the middleware follows: a change (a sliding renewal as a bodiless response starts) commits at once.</summary>
        Finished,
    }

    /// <summary>Where the request is in the session's life (see <see cref="Phase"/>).</summary>
    public Phase CurrentPhase { get; private set; }

    /// <summary>The request's session, once loaded by the middleware or by the ticket store; it stays after the middleware returns.</summary>
    public static RequestSession? Of(HttpContext context) => context.Features.Get<RequestSession>();

    /// <summary>
    /// Reads the session cookie and loads the session's row, once per request: from the middleware, or from the ticket store
    /// (<paramref name="early"/>) when authentication runs before the middleware. The session is kept on the request for the
    /// other. Returns null when the client went away or the load failed (logged; the middleware answers 503, and a
    /// failure is not retried within the request).
    /// </summary>
    public static async Task<RequestSession?> LoadAsync(SessionRuntime runtime, HttpContext context, bool early)
    {
        // The middleware takes over a session the ticket store loaded early; a pipeline run again (an exception handler's
        // re-execution) loads the session again, as a new request would.
        if (Of(context) is { } loaded && (early || loaded.CurrentPhase == Phase.LoadedEarly))
        {
            return loaded;
        }

        if (context.Features.Get<LoadFailure>() is not null)
        {
            return null;
        }

        var secretId = runtime.Cookies.ReadSecretId(context.Request, out var rejectedReason);
        if (rejectedReason is not null)
        {
            Log.CookieRejected(runtime.Logger, rejectedReason);
            var otherKeyRing = rejectedReason == SessionIdProtector.NotOurKeyRing;
            runtime.Metrics.CookieRejected(otherKeyRing ? SessionMetrics.RejectedUnprotectFailed : SessionMetrics.RejectedMalformed);
            if (otherKeyRing)
            {
                runtime.KeyRingRejections.Record(runtime.Logger);
            }
        }

        // No valid cookie: a new empty session, and no database call at all.
        StoredSession? stored = null;
        if (secretId is not null)
        {
            var key = SessionIdProtector.ComputeKey(secretId);
            try
            {
                using var timeout = runtime.StartIOTimeout(context.RequestAborted);
                stored = await runtime.Store.LoadAsync(key, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
            {
                // The client went away; there is nobody to answer.
                return null;
            }
            catch (Exception ex)
            {
                Log.LoadFailed(runtime.Logger, ex);
                context.Features.Set(LoadFailure.Instance);
                return null;
            }

            if (stored is not null && runtime.Expiry.IsPastAbsoluteTimeout(stored.CreatedAt))
            {
                // AbsoluteTimeout caps every session, a remembered sign-in too, whatever expiry its row recorded
                // (written before the timeout was set or shortened); the row is left for the cleaner, as any expired one.
                stored = null;
            }

            if (stored is null)
            {
                // Strict mode: an ID without a live row is never adopted; a write gets a new ID.
                Log.SessionNotFound(runtime.Logger, SessionIdProtector.ToPublicId(key));
                runtime.Metrics.CookieRejected(SessionMetrics.RejectedUnknownSession);
            }
        }

        var request = new RequestSession(runtime, context, secretId, stored);
        context.Features.Set(request);
        if (early)
        {
            // Registered after the authentication handler's own callback, so it runs before it: a sliding renewal the
            // handler stores then finds the session Finished and commits itself.
            context.Response.OnStarting(static state => ((RequestSession)state).ResponseStartingBeforeMiddleware(), request);
        }
        else
        {
            request.CurrentPhase = Phase.InPipeline;
        }

        return request;
    }

    /// <summary>The middleware takes over the session the ticket store loaded early.</summary>
    public void EnterPipeline() => CurrentPhase = Phase.InPipeline;

    /// <summary>The middleware's pipeline returned: it commits once more, and a change after that commits itself.</summary>
    public void LeavePipeline() => CurrentPhase = Phase.Finished;

    /// <summary>
    /// After a change by the ticket store: commits it now when no commit of the middleware follows (the middleware's last
    /// commit ran, or the response started before the middleware took the session); otherwise the middleware commits it.
    /// </summary>
    public Task CommitIfLateAsync() =>
        CurrentPhase == Phase.Finished ? ServerSideSessionMiddleware.CommitLateAsync(this) : Task.CompletedTask;

    // The response starts before the middleware took the early-loaded session (authentication, or a middleware between it
    // and the session middleware, answered on its own): whatever the ticket store changed is committed now.
    private Task ResponseStartingBeforeMiddleware()
    {
        if (CurrentPhase != Phase.LoadedEarly)
        {
            return Task.CompletedTask;
        }

        CurrentPhase = Phase.Finished;
        return ServerSideSessionMiddleware.CommitLateAsync(this);
    }

    /// <summary>Marks a request whose session could not be loaded, so that it is loaded (and logged) once.</summary>
    private sealed class LoadFailure
    {
        public static readonly LoadFailure Instance = new();
    }

    /// <summary>The session loaded from its row, or a new empty one when the request brought no live row.</summary>
    public RequestSession(SessionRuntime runtime, HttpContext context, byte[]? secretId, StoredSession? stored)
    {
        _runtime = runtime;
        Context = context;
        if (secretId is null || stored is null)
        {
            // A cookie naming no live session: expired at the commit, unless a new session's cookie replaces it.
            _deadKey = secretId is null ? null : SessionIdProtector.ComputeKey(secretId);
            Session = ServerSideSession.CreateNew(this, runtime.Options.MaxSessionBytes, runtime.Now());
            return;
        }

        Session = ServerSideSession.FromStored(this, runtime.Options.MaxSessionBytes, secretId, stored, out var dataError);
        if (dataError is not null)
        {
            Log.CorruptSessionData(Logger, Session.Id, dataError);
        }
    }

    public ServerSideSession Session { get; }

    /// <summary>
    /// Whether a new session of this request counts against NewSessionLimit: set by the middleware for a request that
    /// brought no live session from a client the limit applies to (a session new after an abandon replaces a live one).
    /// </summary>
    public bool LimitsCreation { get; set; }

    /// <summary>The response body that lets a refusal replace the app's body (<see cref="LimitsCreation"/> only).</summary>
    public NewSessionResponseBody? ResponseBody { get; set; }

    /// <inheritdoc/>
    public bool ResponseHasStarted => Context.Response.HasStarted;

    public HttpContext Context { get; }

    public ILogger Logger => _runtime.Logger;

    private SessionCookies Cookies => _runtime.Cookies;

    /// <summary>The request failed: its changes are not committed.</summary>
    /// <param name="logChanges">Whether to log the changes that are dropped (not when a failed commit was logged already).</param>
    public void Discard(bool logChanges = true)
    {
        if (logChanges && !_discarded && (Session.IsModified || Session.RenewFromKey is not null || Session.AbandonedKey is not null))
        {
            Log.ChangesDiscarded(Logger, SafeId());
        }

        _discarded = true;
    }

    /// <summary>A commit threw (the middleware logged it and answers the client).</summary>
    public void CommitFailed() => Metrics.Commit(SessionMetrics.OutcomeFailed);

    public SessionMetrics Metrics => _runtime.Metrics;

    public IServerSideSessionStore Store => _runtime.Store;

    /// <summary>
    /// Whether the commit just made refused the new session because its client reached NewSessionLimit, with how long
    /// until it may retry; true once, for the middleware to answer 429.
    /// </summary>
    public bool TakeCreationRefusal(out TimeSpan retryAfter)
    {
        retryAfter = _creationRefusedFor.GetValueOrDefault();
        var refused = _creationRefusedFor is not null;
        _creationRefusedFor = null;
        return refused;
    }

    /// <summary>Whether committing now would call the store (what the commit span is started for).</summary>
    public bool NeedsStore => !_discarded && !Session.IsGone && HasStoreWork(Session);

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
            var deleted = await _runtime.Store.DeleteAsync(abandoned, token).ConfigureAwait(false);
            if (deleted is null && session.AbandonedUserId is { } signedOutUser)
            {
                deleted = await DeleteRenewedAsync(abandoned, signedOutUser, token).ConfigureAwait(false);
            }

            Log.SessionAbandoned(Logger, SessionIdProtector.ToPublicId(abandoned));
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

        if (session.IsNew)
        {
            await CreateAsync(session, token).ConfigureAwait(false);
        }
        else if (session.RenewFromKey is not null)
        {
            if (Context.Response.HasStarted)
            {
                Log.RenewAfterResponseStarted(Logger, SessionIdProtector.ToPublicId(session.RenewFromKey));
                session.CancelRenewal();
                if (session.IsModified)
                {
                    await WriteAsync(session, renew: false, token).ConfigureAwait(false);
                }
            }
            else
            {
                var previousId = await WriteAsync(session, renew: true, token).ConfigureAwait(false);
                if (previousId is not null)
                {
                    // Raised once the commit lock is let go: a handler may revoke or list this user's sessions.
                    await _runtime.Events.RenewedAsync(session.Id, previousId, session.UserId, Context, Context.RequestAborted).ConfigureAwait(false);
                }
            }
        }
        else if (session.IsModified)
        {
            await WriteAsync(session, renew: false, token).ConfigureAwait(false);
        }
        else if (!_touched)
        {
            await TouchIfDueAsync(session, token).ConfigureAwait(false);
        }
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

    /// <summary>The session's public ID for logs, without making an ID for a new session.</summary>
    public string SafeId() => Session.Key is not null ? Session.Id : "(new)";

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

        if (LimitsCreation && !_runtime.MayCreateSession(Context, out var retryAfter))
        {
            // NewSessionLimit: nothing is stored, and the middleware answers 429.
            _creationRefusedFor = retryAfter;
            _discarded = true;
            return;
        }

        session.EnsureId();
        var stored = await _runtime.Store.CreateAsync(NewRow(session), cancellationToken).ConfigureAwait(false);
        Metrics.SessionCreated();
        Metrics.Commit(SessionMetrics.OutcomeCommitted);
        session.MarkCreated(stored);
        _touched = true;
        Log.SessionCreated(Logger, session.Id);
        Cookies.Set(Context, session.SecretId, ExpiresAt(session));
        await _runtime.Events.CreatedAsync(session.Id, session.UserId, Context, Context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>Writes the change set (and the new key when renewing), merging with concurrent commits.</summary>
    /// <returns>The previous public ID when the session was renewed; otherwise <see langword="null"/>.</returns>
    private async Task<string?> WriteAsync(ServerSideSession session, bool renew, CancellationToken cancellationToken)
    {
        var rowKey = renew ? session.RenewFromKey! : session.Key!;
        if (renew && session.FollowsRenewal)
        {
            // The new ID would go to this request, which presented the ID the concurrent renewal retired.
            throw new InvalidOperationException(
                $"Session {SessionIdProtector.ToPublicId(rowKey)} was renewed by a concurrent request while this one ran, so this request cannot renew it again; nothing was written.");
        }

        // Commits of one session in this process take turns, so a commit conflicts at most with other processes
        // and with the commits that finished since it loaded: one re-read, not a storm of retries.
        using var turn = await _runtime.CommitLocks.EnterAsync(rowKey, cancellationToken).ConfigureAwait(false);
        var merged = false;
        if (turn.NewerThan(rowKey, session.Version, session.UserId, session.CreatedAt) is { } committed)
        {
            // A commit of this process wrote the session while this request ran: merge onto what it wrote instead of
            // meeting the conflict and reading the row again. Another process's newer write still conflicts below.
            session.Rebase(committed);
            merged = true;
        }

        var adopted = false;
        var reload = false;
        for (var attempt = 1; ; attempt++)
        {
            if (reload)
            {
                var newer = await _runtime.Store.LoadAsync(rowKey, cancellationToken).ConfigureAwait(false);
                if (newer is null)
                {
                    // Gone since this request loaded it (or followed it there): renewed again, or ended.
                    adopted |= FollowRenewal(session, rowKey, renew) ?? throw Gone(session, rowKey);
                    rowKey = session.Key!;
                    renew = false;
                    continue;
                }

                session.Rebase(newer);
                reload = false;
            }

            SessionUpdateResult result;
            byte[]? written = null;
            if (renew)
            {
                result = await _runtime.Store.RenewAsync(rowKey, session.Version, NewRow(session), cancellationToken).ConfigureAwait(false);
            }
            else
            {
                written = session.Serialize();
                result = await _runtime.Store.UpdateAsync(rowKey, written, session.Version, ExpiresAt(session), cancellationToken).ConfigureAwait(false);
            }

            // Only the latest small row is kept, and none after a renewal (the row moved).
            turn.Remember(rowKey, result.Status == SessionUpdateStatus.Committed && written is { Length: <= MaxRememberedRowBytes } ? written : null, result.Version, _runtime.Now());

            switch (result.Status)
            {
                case SessionUpdateStatus.Committed:
                    _touched = true;
                    Metrics.Commit(attempt == 1 && !merged ? SessionMetrics.OutcomeCommitted : SessionMetrics.OutcomeMerged);
                    if (renew)
                    {
                        // Recorded before the commit lock is let go: a request of this session that loaded the old row
                        // and finds it gone looks here under the same lock.
                        _runtime.Renewals.Add(rowKey, session.Key!, session.SecretId!, session.UserId, session.RenewalChangesUser);
                        session.MarkRenewed(result.Version, _runtime.Now());
                        Metrics.SessionRenewed();
                        var previousId = SessionIdProtector.ToPublicId(rowKey);
                        Log.SessionRenewed(Logger, previousId, session.Id);
                        Cookies.Set(Context, session.SecretId!, ExpiresAt(session));
                        return previousId;
                    }
                    else
                    {
                        session.MarkCommitted(result.Version, _runtime.Now());
                        if (adopted && !session.FollowsRenewal)
                        {
                            Cookies.Set(Context, session.SecretId!, ExpiresAt(session));
                        }
                        else if (!session.FollowsRenewal)
                        {
                            Cookies.Refresh(Context, session.SecretId, ExpiresAt(session));
                        }
                    }

                    return null;

                case SessionUpdateStatus.NotFound when attempt < SessionRuntime.MaxCommitAttempts:
                    adopted |= FollowRenewal(session, rowKey, renew) ?? throw Gone(session, rowKey);
                    rowKey = session.Key!;
                    renew = false;
                    reload = true;
                    break;

                case SessionUpdateStatus.Conflict when attempt < SessionRuntime.MaxCommitAttempts:
                    Log.CommitConflict(Logger, SessionIdProtector.ToPublicId(rowKey), attempt);
                    reload = true;
                    break;

                default:
                    throw new InvalidOperationException(
                        $"Session {SessionIdProtector.ToPublicId(rowKey)} could not be committed: it was changed by concurrent requests on each of {SessionRuntime.MaxCommitAttempts} attempts.");
            }
        }
    }

    /// <summary>Whether committing now needs the store at all (anything to delete, create, write, or an access to record).</summary>
    private bool HasStoreWork(ServerSideSession session) =>
        session.AbandonedKey is not null ||
        session.RenewFromKey is not null ||
        session.IsModified ||
        (session.IsNew ? session.HasContent : !_touched && IsTouchDue(session, _runtime.Now()));

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
    /// The row's expiry when a write is recorded now: the store's default (idle and absolute timeouts), or later when a
    /// remembered sign-in keeps the session until its ticket expires.
    /// </summary>
    private DateTimeOffset? ExpiresAt(ServerSideSession session) =>
        session.KeepUntil is { } keepUntil ? _runtime.Expiry.ExpiresAt(session.CreatedAt, keepUntil) : null;

    private NewSession NewRow(ServerSideSession session)
    {
        string? ip = null;
        string? userAgent = null;
        if (_runtime.Options.RecordDeviceInfo)
        {
            ip = Context.Connection.RemoteIpAddress?.ToString();
            userAgent = Context.Request.Headers.UserAgent.ToString();
            if (userAgent.Length > SessionRuntime.MaxUserAgentLength)
            {
                userAgent = userAgent[..SessionRuntime.MaxUserAgentLength];
            }

            if (userAgent.Length == 0)
            {
                userAgent = null;
            }
        }

        return new NewSession(session.Key!, session.Serialize(), session.UserId, ip, userAgent, ExpiresAt(session));
    }

    /// <summary>
    /// The row this request loaded is gone at its commit: follows the session if this process renewed it meanwhile.
    /// Returns null when it cannot (no renewal known, or this request renews too and is not a sign-in of the same user),
    /// otherwise whether this request took the renewal as its own (and so sends its cookie).
    /// </summary>
    private bool? FollowRenewal(ServerSideSession session, byte[] rowKey, bool renewing)
    {
        if (!_runtime.Renewals.TryGet(rowKey, out var renewal))
        {
            return null;
        }

        if (!renewing)
        {
            if (renewal.SignIn)
            {
                // Renewed by a sign-in (or a change of user) while this request ran: this request began as someone else,
                // perhaps an attacker who planted the old ID, so nothing it does reaches the signed-in session.
                Log.RenewalBySignInNotFollowed(Logger, SessionIdProtector.ToPublicId(rowKey));
                return null;
            }

            session.FollowRenewal(renewal.NewKey);
            Log.RenewalFollowed(Logger, SessionIdProtector.ToPublicId(rowKey), session.Id);
            return false;
        }

        // A sign-in racing a sign-in of the same user (a double-submitted form): one session, the first renewal's ID.
        // Any other renewal here would hand the other request's new ID to a holder of the old one, or renew the browser's
        // new cookie away: it fails instead.
        if (!session.FollowsRenewal && session.RenewalSignsIn && string.Equals(session.UserId, renewal.UserId, StringComparison.Ordinal))
        {
            session.AdoptRenewal(renewal.NewKey, renewal.NewSecretId);
            Log.RenewalAdopted(Logger, SessionIdProtector.ToPublicId(rowKey), session.Id);
            return true;
        }

        return null;
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
                Log.SignOutFollowedRenewal(Logger, SessionIdProtector.ToPublicId(abandonedKey), SessionIdProtector.ToPublicId(key));
                return deleted;
            }
        }

        return null;
    }

    /// <summary>A write found its row gone and no renewal to follow: nothing is written, and the client is told (never a success for a dropped write).</summary>
    private InvalidOperationException Gone(ServerSideSession session, byte[] rowKey)
    {
        Log.SessionGoneAtCommit(Logger, SessionIdProtector.ToPublicId(rowKey));
        session.MarkGone();
        return GoneException(rowKey);
    }

    // No cookie expiry: the browser may hold a newer cookie from a concurrent request (a renewal on another server);
    // only an explicit Abandon or sign-out expires it.
    private static InvalidOperationException GoneException(byte[] rowKey) => new(
        $"Session {SessionIdProtector.ToPublicId(rowKey)} was removed while this request ran (revoked, abandoned, expired, renewed " +
        "on another server, or renewed by a sign-in, which requests begun before it never write into): this request's changes were not written.");
}
