using Microsoft.AspNetCore.Http;

namespace SessionMiddleware;

/// <summary>What every session event tells: which session, whose, when, and the request if there is one.</summary>
public abstract class SessionEventContext
{
    /// <summary>Creates the context.</summary>
    /// <param name="sessionId">The public session ID.</param>
    /// <param name="userId">The user the session is (or was) bound to, if any.</param>
    /// <param name="time">When it happened.</param>
    /// <param name="httpContext">The request that caused it, if any.</param>
    /// <param name="cancellationToken">Cancelled when the request is aborted or the host stops.</param>
    protected SessionEventContext(string sessionId, string? userId, DateTimeOffset time, HttpContext? httpContext, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sessionId);
        SessionId = sessionId;
        UserId = userId;
        Time = time;
        HttpContext = httpContext;
        CancellationToken = cancellationToken;
    }

    /// <summary>
    /// The public session ID: the lowercase hex of the stored key, as <see cref="Microsoft.AspNetCore.Http.ISession.Id"/> and
    /// <see cref="SessionInfo.Id"/> give it. Safe to log; the key to deduplicate events raised again.
    /// </summary>
    public string SessionId { get; }

    /// <summary>The user the session is bound to (for an ended session: was bound to), or <see langword="null"/>.</summary>
    public string? UserId { get; }

    /// <summary>When the event happened, from the app's <see cref="TimeProvider"/>.</summary>
    public DateTimeOffset Time { get; }

    /// <summary>
    /// The request that caused the event, or <see langword="null"/> outside a request (the cleaner, a background job's
    /// revoke). A revoke through <see cref="ISessionManager"/> sees the request from the app's code behind
    /// <c>UseServerSideSessions()</c>; from a middleware before it, only when the app registers an <c>IHttpContextAccessor</c>
    /// (<c>AddTicketStore()</c> does).
    /// </summary>
    public HttpContext? HttpContext { get; }

    /// <summary>Cancelled when the request is aborted or the host stops.</summary>
    public CancellationToken CancellationToken { get; }
}

/// <summary>A new session was stored (<see cref="ServerSideSessionEvents.OnCreated"/>).</summary>
/// <param name="sessionId">The public session ID.</param>
/// <param name="userId">The user the session is bound to, if any.</param>
/// <param name="time">When it was stored.</param>
/// <param name="httpContext">The request.</param>
/// <param name="cancellationToken">Cancelled when the request is aborted.</param>
public sealed class SessionCreatedContext(string sessionId, string? userId, DateTimeOffset time, HttpContext? httpContext, CancellationToken cancellationToken = default)
    : SessionEventContext(sessionId, userId, time, httpContext, cancellationToken);

/// <summary>A session's ID was renewed (<see cref="ServerSideSessionEvents.OnRenewed"/>); the previous ID is dead.</summary>
/// <param name="sessionId">The new public session ID.</param>
/// <param name="previousSessionId">The public ID the session had before.</param>
/// <param name="userId">The user the session is bound to, if any.</param>
/// <param name="time">When the renewal was stored.</param>
/// <param name="httpContext">The request.</param>
/// <param name="cancellationToken">Cancelled when the request is aborted.</param>
public sealed class SessionRenewedContext(string sessionId, string previousSessionId, string? userId, DateTimeOffset time, HttpContext? httpContext, CancellationToken cancellationToken = default)
    : SessionEventContext(sessionId, userId, time, httpContext, cancellationToken)
{
    /// <summary>The public ID the session had before the renewal.</summary>
    public string PreviousSessionId { get; } = previousSessionId ?? throw new ArgumentNullException(nameof(previousSessionId));
}

/// <summary>A session ended (<see cref="ServerSideSessionEvents.OnEnded"/>).</summary>
/// <param name="sessionId">The public session ID.</param>
/// <param name="reason">Why (<see cref="SessionEndReason"/>).</param>
/// <param name="userId">The user the session was bound to, if any.</param>
/// <param name="time">When it was ended (for an expiry: when the cleaner found it expired).</param>
/// <param name="httpContext">The request that ended it, or <see langword="null"/> (the cleaner).</param>
/// <param name="cancellationToken">Cancelled when the request is aborted or the host stops.</param>
public sealed class SessionEndedContext(string sessionId, string reason, string? userId, DateTimeOffset time, HttpContext? httpContext, CancellationToken cancellationToken = default)
    : SessionEventContext(sessionId, userId, time, httpContext, cancellationToken)
{
    /// <summary>
    /// Why the session ended: one of <see cref="SessionEndReason"/> (<c>abandoned</c>, <c>signed_out</c>, <c>revoked</c>,
    /// <c>idle_timeout</c>, <c>absolute_timeout</c>).
    /// </summary>
    public string Reason { get; } = reason ?? throw new ArgumentNullException(nameof(reason));
}
