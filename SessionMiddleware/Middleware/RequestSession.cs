using System.Diagnostics;
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
    private readonly SessionRuntime _runtime;
    private bool _touched;
    private bool _discarded;
    private TimeSpan? _creationRefusedFor;

    /// <summary>The session loaded from its row, or a new empty one when the request brought no live row.</summary>
    public RequestSession(SessionRuntime runtime, HttpContext context, byte[]? secretId, StoredSession? stored)
    {
        _runtime = runtime;
        Context = context;
        if (secretId is null || stored is null)
        {
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
        //   row gone at any write         none more (MarkGone)                     expired
        var session = Session;
        if (_discarded || session.IsGone || !HasStoreWork(session))
        {
            // Most read-only requests end here: no store call, so no timeout token source either.
            return;
        }

        using var timeout = _runtime.StartIOTimeout(cancellationToken);
        var token = timeout.Token;

        if (session.AbandonedKey is { } abandoned)
        {
            var deleted = await Metrics.TimeAsync(_runtime.Store, "delete", Stopwatch.GetTimestamp(), _runtime.Store.DeleteAsync(abandoned, token)).ConfigureAwait(false);
            Log.SessionAbandoned(Logger, SessionIdProtector.ToPublicId(abandoned));
            if (deleted)
            {
                Metrics.SessionsEnded(session.SignedOut ? SessionMetrics.ReasonSignedOut : SessionMetrics.ReasonAbandoned);
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
                await WriteAsync(session, renew: true, token).ConfigureAwait(false);
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

        if (!_runtime.MayCreateSession(Context, out var retryAfter))
        {
            // NewSessionLimit: nothing is stored, and the middleware answers 429.
            _creationRefusedFor = retryAfter;
            _discarded = true;
            return;
        }

        session.EnsureId();
        var stored = await Metrics.TimeAsync(_runtime.Store, "create", Stopwatch.GetTimestamp(), _runtime.Store.CreateAsync(NewRow(session), cancellationToken)).ConfigureAwait(false);
        Metrics.SessionCreated();
        Metrics.Commit(SessionMetrics.OutcomeCommitted);
        session.MarkCreated(stored);
        _touched = true;
        Log.SessionCreated(Logger, session.Id);
        Cookies.Set(Context, session.SecretId, ExpiresAt(session));
    }

    /// <summary>Writes the change set (and the new key when renewing), merging with concurrent commits.</summary>
    private async Task WriteAsync(ServerSideSession session, bool renew, CancellationToken cancellationToken)
    {
        var rowKey = renew ? session.RenewFromKey! : session.Key!;

        // Commits of one session in this process take turns, so a commit conflicts at most with other processes
        // and with the commits that finished since it loaded: one re-read, not a storm of retries.
        using var turn = await _runtime.CommitLocks.EnterAsync(rowKey, cancellationToken).ConfigureAwait(false);
        for (var attempt = 1; ; attempt++)
        {
            SessionUpdateResult result;
            using (var renewSpan = renew ? SessionTracing.Start("renew", Metrics, _runtime.Store) : null)
            {
                result = renew
                    ? await Metrics.TimeAsync(_runtime.Store, "renew", Stopwatch.GetTimestamp(), _runtime.Store.RenewAsync(rowKey, session.Version, NewRow(session), cancellationToken)).ConfigureAwait(false)
                    : await Metrics.TimeAsync(_runtime.Store, "update", Stopwatch.GetTimestamp(), _runtime.Store.UpdateAsync(rowKey, session.Serialize(), session.Version, ExpiresAt(session), cancellationToken)).ConfigureAwait(false);
            }

            switch (result.Status)
            {
                case SessionUpdateStatus.Committed:
                    _touched = true;
                    Metrics.Commit(attempt == 1 ? SessionMetrics.OutcomeCommitted : SessionMetrics.OutcomeMerged);
                    if (renew)
                    {
                        session.MarkRenewed(result.Version, _runtime.Now());
                        Metrics.SessionRenewed();
                        Log.SessionRenewed(Logger, SessionIdProtector.ToPublicId(rowKey), session.Id);
                        Cookies.Set(Context, session.SecretId!, ExpiresAt(session));
                    }
                    else
                    {
                        session.MarkCommitted(result.Version, _runtime.Now());
                        Cookies.Refresh(Context, session.SecretId, ExpiresAt(session));
                    }

                    return;

                case SessionUpdateStatus.NotFound:
                    Gone(session, rowKey);
                    return;

                case SessionUpdateStatus.Conflict when attempt < SessionRuntime.MaxCommitAttempts:
                    Log.CommitConflict(Logger, SessionIdProtector.ToPublicId(rowKey), attempt);
                    var newer = await Metrics.TimeAsync(_runtime.Store, "load", Stopwatch.GetTimestamp(), _runtime.Store.LoadAsync(rowKey, cancellationToken)).ConfigureAwait(false);
                    if (newer is null)
                    {
                        Gone(session, rowKey);
                        return;
                    }

                    session.Rebase(newer);
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
            found = await Metrics.TimeAsync(_runtime.Store, "touch", Stopwatch.GetTimestamp(), _runtime.Store.TouchAsync(session.Key!, ExpiresAt(session), cancellationToken)).ConfigureAwait(false);
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
            Cookies.Refresh(Context, session.SecretId, ExpiresAt(session));
        }
        else
        {
            Gone(session, session.Key!);
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

    private void Gone(ServerSideSession session, byte[] rowKey)
    {
        Log.SessionGoneAtCommit(Logger, SessionIdProtector.ToPublicId(rowKey));
        session.MarkGone();
        Cookies.Expire(Context);
    }
}
