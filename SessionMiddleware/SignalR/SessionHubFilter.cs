using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SessionMiddleware.Live;

namespace SessionMiddleware.SignalR;

/// <summary>
/// The hub filter every hub runs through (registered in <see cref="HubOptions"/>): ties each connection to the session of
/// the request that opened it, closes the connection when that session ends, runs no hub method after the end, and
/// records hub invocations as activity on the session.
/// </summary>
internal sealed class SessionHubFilter(
    LiveSessionConnections connections,
    IOptions<ServerSideSessionHubOptions> options,
    ILogger<SessionHubFilter> logger) : IHubFilter
{
    /// <summary>The key of the connection's <see cref="HubSessionLink"/> in <see cref="HubCallerContext.Items"/>.</summary>
    private static readonly object LinkKey = new();

    /// <summary>The key that marks a refused connection in <see cref="HubCallerContext.Items"/>.</summary>
    private static readonly object RefusedKey = new();

    private readonly bool _requireSession = options.Value.RequireSession;

    /// <inheritdoc/>
    public async Task OnConnectedAsync(HubLifetimeContext context, Func<HubLifetimeContext, Task> next)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(next);
        if (Blazor.CircuitSessionHubFilter.IsComponentHub(context.Hub))
        {
            // Blazor's hub: its circuits are tied to the session by AddServerSideSessions() on the Blazor builder, which
            // shows the signed-out state before it closes the circuit, and lets anonymous circuits in.
            await next(context).ConfigureAwait(false);
            return;
        }

        var caller = context.Context;
        var lease = caller.GetHttpContext() is { } request
            ? await connections.HoldAsync(request, caller.ConnectionAborted).ConfigureAwait(false)
            : null;
        if (lease is null)
        {
            if (_requireSession)
            {
                SignalRLog.ConnectionRefusedWithoutSession(logger, caller.ConnectionId);
                Refuse(caller);
                return;
            }

            await next(context).ConfigureAwait(false);
            return;
        }

        var link = new HubSessionLink(lease, caller, logger);
        if (lease.HasEnded)
        {
            // The session ended between the request's load and now.
            link.Close();
            link.Dispose();
            Refuse(caller);
            return;
        }

        caller.Items[LinkKey] = link;
        SignalRLog.ConnectionTied(logger, caller.ConnectionId, lease.PublicId);
        link.CloseOnEnd();
        try
        {
            await next(context).ConfigureAwait(false);
        }
        catch
        {
            // SignalR closes the connection without OnDisconnectedAsync when the hub's OnConnectedAsync throws.
            caller.Items.Remove(LinkKey);
            link.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public async ValueTask<object?> InvokeMethodAsync(HubInvocationContext invocationContext, Func<HubInvocationContext, ValueTask<object?>> next)
    {
        ArgumentNullException.ThrowIfNull(invocationContext);
        ArgumentNullException.ThrowIfNull(next);
        var caller = invocationContext.Context;
        if (!caller.Items.TryGetValue(LinkKey, out var value) || value is not HubSessionLink link)
        {
            return caller.Items.ContainsKey(RefusedKey)
                ? throw new HubException("This hub connection was refused: it has no session.")
                : await next(invocationContext).ConfigureAwait(false);
        }

        if (!link.HasEnded)
        {
            // Hub invocations are activity: the session is touched once per TouchInterval.
            await link.Lease.RecordActivityAsync(caller.ConnectionAborted).ConfigureAwait(false);
        }

        if (!link.TryEnterInvocation())
        {
            SignalRLog.InvocationRefused(logger, invocationContext.HubMethodName, caller.ConnectionId, link.Lease.PublicId);
            link.Close();
            throw new HubException("The session of this hub connection has ended: the method was not run, and the connection is closing.");
        }

        ValueTask<object?> invocation;
        try
        {
            invocation = next(invocationContext);
        }
        finally
        {
            link.ExitInvocation();
        }

        return await invocation.ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async Task OnDisconnectedAsync(HubLifetimeContext context, Exception? exception, Func<HubLifetimeContext, Exception?, Task> next)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(next);
        var items = context.Context.Items;
        if (items.Remove(RefusedKey))
        {
            // The hub never saw this connection's OnConnectedAsync.
            return;
        }

        try
        {
            await next(context, exception).ConfigureAwait(false);
        }
        finally
        {
            if (items.Remove(LinkKey, out var value) && value is HubSessionLink link)
            {
                link.Dispose();
            }
        }
    }

    private static void Refuse(HubCallerContext caller)
    {
        caller.Items[RefusedKey] = true;
        caller.Abort();
    }
}
