using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using SessionMiddleware.Ids;
using SessionMiddleware.Diagnostics;
using SessionMiddleware.Live;
using SessionMiddleware.Logging;

namespace SessionMiddleware.Events;

/// <summary>
/// Raises the app's <see cref="ServerSideSessionEvents"/> and counts ended sessions: the one place where a session's end is
/// classified (a row found expired ended by its timeout, whatever deleted it) and where a handler's exception stops.
/// </summary>
internal sealed class SessionEvents
{
    private readonly ServerSideSessionEvents _events;
    private readonly TimeProvider _timeProvider;
    private readonly long _absoluteSeconds;
    private readonly ILogger<SessionEvents> _logger;
    private readonly SessionMetrics? _metrics;
    private readonly LiveSessionRegistry? _live;

    /// <param name="events">The app's handlers (<c>ServerSideSessionOptions.Events</c>).</param>
    /// <param name="absoluteTimeout"><c>ServerSideSessionOptions.AbsoluteTimeout</c>, which tells an absolute timeout from an idle one.</param>
    /// <param name="timeProvider">The clock.</param>
    /// <param name="logger">Logs a handler's exception.</param>
    /// <param name="metrics">Counts ended sessions.</param>
    /// <param name="live">The sessions held open by connections in this process, ended with their rows.</param>
    public SessionEvents(ServerSideSessionEvents events, TimeSpan? absoluteTimeout, TimeProvider timeProvider, ILogger<SessionEvents> logger, SessionMetrics? metrics = null, LiveSessionRegistry? live = null)
    {
        ArgumentNullException.ThrowIfNull(events);
        _events = events;
        _timeProvider = timeProvider;
        _absoluteSeconds = absoluteTimeout is { } a ? (long)Math.Ceiling(a.TotalSeconds) : -1;
        _logger = logger;
        _metrics = metrics;
        _live = live;
    }

    /// <summary>
    /// Why a row ended: <see cref="SessionEndReason.AbsoluteTimeout"/> when its expiry is its absolute cap (creation +
    /// <see cref="ServerSideSessionOptions.AbsoluteTimeout"/>), <see cref="SessionEndReason.IdleTimeout"/> for another expiry.
    /// </summary>
    public string TimeoutReason(SessionLifetime row) =>
        _absoluteSeconds >= 0 && row.ExpiresAt.ToUnixTimeSeconds() >= row.CreatedAt.ToUnixTimeSeconds() + _absoluteSeconds
            ? SessionEndReason.AbsoluteTimeout
            : SessionEndReason.IdleTimeout;

    /// <summary>
    /// Why a deleted row ended: <paramref name="reason"/> when it was live, or its timeout when it had expired before the
    /// delete (it ended then; the delete only found it first).
    /// </summary>
    public string ReasonFor(SessionLifetime row, string reason) =>
        row.ExpiresAt.ToUnixTimeSeconds() < _timeProvider.GetUtcNow().ToUnixTimeSeconds() ? TimeoutReason(row) : reason;

    public Task CreatedAsync(string sessionId, string? userId, HttpContext? httpContext, CancellationToken cancellationToken) =>
        InvokeAsync(
            nameof(ServerSideSessionEvents.OnCreated),
            _events.Created,
            new SessionCreatedContext(sessionId, userId, _timeProvider.GetUtcNow(), httpContext, cancellationToken));

    public Task RenewedAsync(string sessionId, string previousSessionId, string? userId, HttpContext? httpContext, CancellationToken cancellationToken) =>
        InvokeAsync(
            nameof(ServerSideSessionEvents.OnRenewed),
            _events.Renewed,
            new SessionRenewedContext(sessionId, previousSessionId, userId, _timeProvider.GetUtcNow(), httpContext, cancellationToken));

    /// <summary>
    /// Ends what this process holds open for one session (its connections, circuits, <see cref="IServerSideSession.Ended"/>),
    /// raises <see cref="ServerSideSessionEvents.OnEnded"/> for it, and counts it unless <paramref name="count"/>
    /// is false (the cleaner counts what it deleted, after the delete).
    /// </summary>
    public Task EndedAsync(SessionLifetime row, string reason, HttpContext? httpContext, CancellationToken cancellationToken, bool count = true)
    {
        // First: the connections this session holds open close before the app's handler runs.
        _live?.SessionEnded(row.Key);

        if (count)
        {
            _metrics?.SessionsEnded(reason);
        }

        return InvokeAsync(
            nameof(ServerSideSessionEvents.OnEnded),
            _events.Ended,
            new SessionEndedContext(SessionIds.ToPublicId(row.Key), reason, row.UserId, _timeProvider.GetUtcNow(), httpContext, cancellationToken));
    }

    // Whether the handler throws at once or its task fails, the exception stops here. A handler that completes at once
    // (the default ones) costs no state machine.
    private Task InvokeAsync<TContext>(string eventName, Func<TContext, Task> handler, TContext context)
        where TContext : SessionEventContext
    {
        Task task;
        try
        {
            task = handler(context);
        }
        catch (Exception ex)
        {
            Log.SessionEventHandlerFailed(_logger, eventName, context.SessionId, ex);
            return Task.CompletedTask;
        }

        return task.IsCompletedSuccessfully ? Task.CompletedTask : AwaitAsync(task, eventName, context.SessionId);
    }

    private async Task AwaitAsync(Task task, string eventName, string sessionId)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Log.SessionEventHandlerFailed(_logger, eventName, sessionId, ex);
        }
    }
}
