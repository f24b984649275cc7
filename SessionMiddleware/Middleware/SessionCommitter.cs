using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace SessionMiddleware;

/// <summary>
/// Writes one request's session back: deletes an abandoned row, creates the row and sets the cookie for a new
/// session, moves a renewed session to its new key, writes the change set of a modified one (optimistically,
/// merging with concurrent commits), or records the access of an unmodified one when the stored time is older
/// than <see cref="ServerSideSessionOptions.TouchInterval"/>.
/// </summary>
internal sealed class SessionCommitter
{
    private readonly SessionRuntime _runtime;
    private readonly HttpContext _context;
    private ServerSideSession? _session;
    private bool _touched;
    private bool _discarded;

    public SessionCommitter(SessionRuntime runtime, HttpContext context)
    {
        _runtime = runtime;
        _context = context;
    }

    public ServerSideSession Session => _session ?? throw new InvalidOperationException("No session attached.");

    public void Attach(ServerSideSession session) => _session = session;

    /// <summary>The request failed: its changes are not committed.</summary>
    public void Discard()
    {
        if (!_discarded && (Session.IsModified || Session.RenewFromKey is not null || Session.AbandonedKey is not null))
        {
            Log.ChangesDiscarded(_runtime.Logger, SafeId());
        }

        _discarded = true;
    }

    /// <summary>Response.OnStarting: commit before the first byte goes out, so the next request sees the write.</summary>
    public static Task OnStartingAsync(object state) => ((SessionCommitter)state).CommitOnStartingAsync();

    private async Task CommitOnStartingAsync()
    {
        try
        {
            await CommitAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // The response has not started: make it an error so the client is not told a lost write succeeded.
            Log.CommitFailed(_runtime.Logger, SafeId(), ex);
            _discarded = true;
            _context.Response.Headers.Clear();
            _context.Response.StatusCode = StatusCodes.Status500InternalServerError;
            throw;
        }
    }

    /// <summary>Commits whatever this request has not committed yet.</summary>
    public async Task CommitAsync(CancellationToken cancellationToken)
    {
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
            await _runtime.Store.DeleteAsync(abandoned, token).ConfigureAwait(false);
            Log.SessionAbandoned(_runtime.Logger, SessionIdProtector.ToPublicId(abandoned));
            session.MarkAbandonCommitted();
            if (!session.HasContent && !_context.Response.HasStarted)
            {
                ExpireCookie();
            }
        }

        if (session.IsNew)
        {
            await CreateAsync(session, token).ConfigureAwait(false);
        }
        else if (session.RenewFromKey is not null)
        {
            if (_context.Response.HasStarted)
            {
                Log.RenewAfterResponseStarted(_runtime.Logger, SessionIdProtector.ToPublicId(session.RenewFromKey));
                session.CancelRenewal();
                if (session.IsModified || session.DataUnreadable)
                {
                    await WriteAsync(session, renew: false, token).ConfigureAwait(false);
                }
            }
            else
            {
                await WriteAsync(session, renew: true, token).ConfigureAwait(false);
            }
        }
        else if (session.IsModified || session.DataUnreadable)
        {
            await WriteAsync(session, renew: false, token).ConfigureAwait(false);
        }
        else if (!_touched)
        {
            await TouchIfDueAsync(session, token).ConfigureAwait(false);
        }
    }

    private async Task CreateAsync(ServerSideSession session, CancellationToken cancellationToken)
    {
        if (!session.HasContent)
        {
            // New and empty: nothing stored, no cookie.
            return;
        }

        if (_context.Response.HasStarted)
        {
            Log.NewSessionAfterResponseStarted(_runtime.Logger);
            return;
        }

        session.EnsureId();
        var stored = await _runtime.Store.CreateAsync(NewRow(session), cancellationToken).ConfigureAwait(false);
        session.MarkCreated(stored);
        _touched = true;
        Log.SessionCreated(_runtime.Logger, session.Id);
        SetCookie(session);
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
            var result = renew
                ? await _runtime.Store.RenewAsync(rowKey, session.Version, NewRow(session), cancellationToken).ConfigureAwait(false)
                : await _runtime.Store.UpdateAsync(rowKey, session.Serialize(), session.Version, cancellationToken).ConfigureAwait(false);
            switch (result.Status)
            {
                case SessionUpdateStatus.Committed:
                    _touched = true;
                    if (renew)
                    {
                        session.MarkRenewed(result.Version, _runtime.Now());
                        Log.SessionRenewed(_runtime.Logger, SessionIdProtector.ToPublicId(rowKey), session.Id);
                        SetCookie(session);
                    }
                    else
                    {
                        session.MarkCommitted(result.Version, _runtime.Now());
                        RefreshPersistentCookie(session);
                    }

                    return;

                case SessionUpdateStatus.NotFound:
                    Gone(session, rowKey);
                    return;

                case SessionUpdateStatus.Conflict when attempt < SessionRuntime.MaxCommitAttempts:
                    Log.CommitConflict(_runtime.Logger, SessionIdProtector.ToPublicId(rowKey), attempt);
                    var newer = await _runtime.Store.LoadAsync(rowKey, cancellationToken).ConfigureAwait(false);
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
        session.DataUnreadable ||
        (session.IsNew ? session.HasContent : !_touched && IsTouchDue(session, _runtime.Now()));

    // The store records whole seconds: within the second already recorded, a touch would write the same value again
    // (with TouchInterval = 0 that was every request but the first of each second).
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
            found = await _runtime.Store.TouchAsync(session.Key!, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Includes IOTimeout's cancellation: commits are never cancelled by the client, only by that timeout.
            // Not recording an access loses no data: the request goes on, the session just ages from its last recorded use.
            Log.TouchFailed(_runtime.Logger, session.Id, ex);
            return;
        }

        if (found)
        {
            session.MarkTouched(now);
            RefreshPersistentCookie(session);
        }
        else
        {
            Gone(session, session.Key!);
        }
    }

    private NewSession NewRow(ServerSideSession session)
    {
        string? ip = null;
        string? userAgent = null;
        if (_runtime.Options.RecordDeviceInfo)
        {
            ip = _context.Connection.RemoteIpAddress?.ToString();
            userAgent = _context.Request.Headers.UserAgent.ToString();
            if (userAgent.Length > SessionRuntime.MaxUserAgentLength)
            {
                userAgent = userAgent[..SessionRuntime.MaxUserAgentLength];
            }

            if (userAgent.Length == 0)
            {
                userAgent = null;
            }
        }

        return new NewSession(session.Key!, session.Serialize(), session.UserId, ip, userAgent);
    }

    private void Gone(ServerSideSession session, byte[] rowKey)
    {
        Log.SessionGoneAtCommit(_runtime.Logger, SessionIdProtector.ToPublicId(rowKey));
        session.MarkGone();
        if (!_context.Response.HasStarted)
        {
            ExpireCookie();
        }
    }

    private void SetCookie(ServerSideSession session)
    {
        if (_context.Response.HasStarted)
        {
            return;
        }

        _context.Response.Cookies.Append(_runtime.CookieName, _runtime.Protector.Protect(session.SecretId!), _runtime.BuildCookie(_context));
        var headers = _context.Response.Headers;
        headers.CacheControl = "no-cache,no-store";
        headers.Pragma = "no-cache";
        headers[HeaderNames.Expires] = "-1";
    }

    /// <summary>A persistent cookie is sent again whenever the access is recorded, so its expiry slides with the server's.</summary>
    private void RefreshPersistentCookie(ServerSideSession session)
    {
        if (_runtime.Options.Cookie.MaxAge is not null && session.SecretId is not null)
        {
            SetCookie(session);
        }
    }

    private void ExpireCookie()
    {
        if (_context.Request.Cookies.ContainsKey(_runtime.CookieName))
        {
            _context.Response.Cookies.Delete(_runtime.CookieName, _runtime.BuildCookie(_context));
        }
    }

    /// <summary>The session's public ID for logs, without making an ID for a new session.</summary>
    public string SafeId() => _session is { Key: not null } s ? s.Id : "(new)";
}
