using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Logging;
using SessionMiddleware.Live;

namespace SessionMiddleware.Blazor;

/// <summary>
/// A hub filter that sees Blazor Server's own hub (<c>ComponentHub</c>, internal to the framework, recognised by name):
/// on a connection's first call it holds the session of the request that opened the connection, and runs every call with
/// it as <see cref="CircuitSessionSlot.Current"/> so that the circuit created during those calls claims it. Other hubs
/// pass through untouched.
/// </summary>
internal sealed class CircuitSessionHubFilter(LiveSessionConnections connections, ILogger<CircuitSessionHubFilter> logger) : IHubFilter
{
    /// <summary>The full name of the framework's Blazor Server hub.</summary>
    internal const string ComponentHubTypeName = "Microsoft.AspNetCore.Components.Server.ComponentHub";

    private static readonly object SlotKey = new();

    /// <inheritdoc/>
    public async ValueTask<object?> InvokeMethodAsync(HubInvocationContext invocationContext, Func<HubInvocationContext, ValueTask<object?>> next)
    {
        ArgumentNullException.ThrowIfNull(invocationContext);
        ArgumentNullException.ThrowIfNull(next);
        if (!IsComponentHub(invocationContext.Hub))
        {
            return await next(invocationContext).ConfigureAwait(false);
        }

        var caller = invocationContext.Context;
        CircuitSessionSlot slot;
        if (caller.Items.TryGetValue(SlotKey, out var held) && held is CircuitSessionSlot existing)
        {
            slot = existing;
        }
        else
        {
            slot = new CircuitSessionSlot(await HoldAsync(caller).ConfigureAwait(false));
            caller.Items[SlotKey] = slot;
        }

        // Set inside this async method: the value flows into the call (and the circuit's work it queues), not back out.
        CircuitSessionSlot.Current = slot;
        return await next(invocationContext).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async Task OnDisconnectedAsync(HubLifetimeContext context, Exception? exception, Func<HubLifetimeContext, Exception?, Task> next)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(next);
        try
        {
            await next(context, exception).ConfigureAwait(false);
        }
        finally
        {
            if (IsComponentHub(context.Hub) && context.Context.Items.TryGetValue(SlotKey, out var held) && held is CircuitSessionSlot slot)
            {
                slot.Close();
            }
        }
    }

    internal static bool IsComponentHub(Hub hub) => string.Equals(hub.GetType().FullName, ComponentHubTypeName, StringComparison.Ordinal);

    private async ValueTask<LiveSessionLease?> HoldAsync(HubCallerContext caller)
    {
        if (caller.GetHttpContext() is not { } httpContext)
        {
            return null;
        }

        try
        {
            return await connections.HoldAsync(httpContext, caller.ConnectionAborted).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            BlazorLog.LookupFailed(logger, ex);
            throw;
        }
    }
}
