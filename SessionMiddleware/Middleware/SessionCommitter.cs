using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace SessionMiddleware;

/// <summary>
/// Writes one request's session back: creates the row and sets the cookie for a new session, writes the
/// change set of a modified one (optimistically, merging with concurrent commits), or records the access of
/// an unmodified one when the stored time is older than <see cref="ServerSideSessionOptions.TouchInterval"/>.
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
        if (!_discarded && Session.IsModified)
        {
            Log.ChangesDiscarded(_runtime.Logger, SafeId());
        }

        _discarded = true;
    }

    /// <summary>Response.OnStarting: commit before the first byte goes out, so the next request sees the write.</summary>
    public static Task OnStartingAsync(object state)
    {
        var committer = (SessionCommitter)state;
        return committer.CommitOnStartingAsync();
    }

    private async Task CommitOnStartingAsync()
    {
        try
        {
            await CommitAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // The response has not started: turn it into an error so the client is not told a lost write succeeded.
            Log.CommitFailed(_runtime.Logger, SafeId(), ex);
            _context.Response.Headers.Clear();
            _context.Response.StatusCode = StatusCodes.Status500InternalServerError;
            throw;
        }
    }

    /// <summary>Commits whatever this request has not committed yet.</summary>
    public async Task CommitAsync(CancellationToken cancellationToken)
    {
        var session = Session;
        if (_discarded || session.IsGone)
        {
            return;
        }

        if (session.IsNew)
        {
            await CreateAsync(session, cancellationToken).ConfigureAwait(false);
        }
        else if (session.IsModified || session.DataUnreadable)
        {
            await UpdateAsync(session, cancellationToken).ConfigureAwait(false);
        }
        else if (!_touched)
        {
            await TouchIfDueAsync(session, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task CreateAsync(ServerSideSession session, CancellationToken cancellationToken)
    {
        if (session.Count == 0)
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
        var ip = _context.Connection.RemoteIpAddress?.ToString();
        var userAgent = _context.Request.Headers.UserAgent.ToString();
        if (userAgent.Length > SessionRuntime.MaxUserAgentLength)
        {
            userAgent = userAgent[..SessionRuntime.MaxUserAgentLength];
        }

        var stored = await _runtime.Store.CreateAsync(
            new NewSession(session.Key, session.Serialize(), session.UserId, ip, userAgent.Length == 0 ? null : userAgent),
            cancellationToken).ConfigureAwait(false);
        session.MarkCreated(stored);
        _touched = true;
        Log.SessionCreated(_runtime.Logger, session.Id);
        SetCookie(session);
    }

    private async Task UpdateAsync(ServerSideSession session, CancellationToken cancellationToken)
    {
        var key = session.Key!;
        for (var attempt = 1; ; attempt++)
        {
            var result = await _runtime.Store.UpdateAsync(key, session.Serialize(), session.Version, cancellationToken).ConfigureAwait(false);
            switch (result.Status)
            {
                case SessionUpdateStatus.Committed:
                    session.MarkCommitted(result.Version, _runtime.Now());
                    _touched = true;
                    return;

                case SessionUpdateStatus.NotFound:
                    Gone(session);
                    return;

                case SessionUpdateStatus.Conflict when attempt < SessionRuntime.MaxCommitAttempts:
                    Log.CommitConflict(_runtime.Logger, session.Id, attempt);
                    var newer = await _runtime.Store.LoadAsync(key, cancellationToken).ConfigureAwait(false);
                    if (newer is null)
                    {
                        Gone(session);
                        return;
                    }

                    session.Rebase(newer);
                    break;

                default:
                    throw new InvalidOperationException(
                        $"Session {session.Id} could not be committed: it was changed by concurrent requests on each of {SessionRuntime.MaxCommitAttempts} attempts.");
            }
        }
    }

    private async Task TouchIfDueAsync(ServerSideSession session, CancellationToken cancellationToken)
    {
        var now = _runtime.Now();
        if (now - session.LastAccessAt < _runtime.Options.TouchInterval)
        {
            return;
        }

        _touched = true;
        if (await _runtime.Store.TouchAsync(session.Key!, cancellationToken).ConfigureAwait(false))
        {
            session.MarkTouched(now);
        }
        else
        {
            Gone(session);
        }
    }

    private void Gone(ServerSideSession session)
    {
        Log.SessionGoneAtCommit(_runtime.Logger, session.Id);
        session.MarkGone();
        if (!_context.Response.HasStarted)
        {
            _context.Response.Cookies.Delete(_runtime.CookieName, _runtime.Options.Cookie.Build(_context));
        }
    }

    private void SetCookie(ServerSideSession session)
    {
        var cookieOptions = _runtime.Options.Cookie.Build(_context, _runtime.TimeProvider.GetUtcNow());
        _context.Response.Cookies.Append(_runtime.CookieName, _runtime.Protector.Protect(session.SecretId!), cookieOptions);
        var headers = _context.Response.Headers;
        headers.CacheControl = "no-cache,no-store";
        headers.Pragma = "no-cache";
        headers[HeaderNames.Expires] = "-1";
    }

    /// <summary>The session's public ID for logs, without making an ID for a new session.</summary>
    public string SafeId() => _session is { Key: not null } s ? s.Id : "(new)";
}
