using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using SessionMiddleware.Ids;
using SessionMiddleware.Cookies;
using SessionMiddleware.Diagnostics;
using SessionMiddleware.Logging;
using SessionMiddleware.Session;

namespace SessionMiddleware.Middleware;

/// <summary>
/// One request's session and its way back to the store: owns the <see cref="ServerSideSession"/> (whose
/// <c>CommitAsync</c> runs <see cref="CommitAsync"/>) and writes it back, with the cookie that goes with it.
/// Store failures are thrown; the middleware decides what the client is told. By the steps of a request: the load
/// (<c>RequestSession.Load.cs</c>), the commit (<c>RequestSession.Commit.cs</c>) and its write, merged with concurrent
/// commits (<c>RequestSession.Write.cs</c>).
/// </summary>
internal sealed partial class RequestSession : ISessionOwner
{
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

    /// <summary>The session loaded from its row, or a new empty one when the request brought no live row.</summary>
    public RequestSession(SessionRuntime runtime, HttpContext context, byte[]? secretId, StoredSession? stored)
    {
        _runtime = runtime;
        Context = context;
        if (secretId is null || stored is null)
        {
            // A cookie naming no live session: expired at the commit, unless a new session's cookie replaces it.
            _deadKey = secretId is null ? null : SessionIds.ComputeKey(secretId);
            Session = ServerSideSession.CreateNew(this, runtime.DataProtector, runtime.TimeProvider, runtime.Options.MaxSessionBytes, runtime.Now());
            return;
        }

        Session = ServerSideSession.FromStored(this, runtime.DataProtector, runtime.TimeProvider, runtime.Options.MaxSessionBytes, secretId, stored, out var dataError);
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

    /// <summary>The session's public ID for logs, without making an ID for a new session.</summary>
    public string SafeId() => Session.Key is not null ? Session.Id : "(new)";

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

        return new NewSession(session.Key!, session.Serialize(), session.UserId, ip, userAgent, ExpiresAt(session))
        {
            SignIn = session.SignInToStore(_runtime.Now()),
            UserLimit = UserLimitOf(session),
        };
    }
}
