using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.DependencyInjection.Extensions;
using SessionMiddleware;
using SessionMiddleware.SignalR;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Ties SignalR hub connections to server-side sessions.</summary>
public static class ServerSideSessionSignalRBuilderExtensions
{
    /// <summary>
    /// Ties every hub connection to the session of the request that opened it (WebSockets, server-sent events and long
    /// polling alike). When that session ends — revoked through <see cref="ISessionManager"/>, abandoned, signed out,
    /// ended by a sign-in of another user on the browser, idle or absolute expiry, on this server or (through the store's
    /// change feed) on another — the connection is closed, and no hub method runs for it after the end. Hub invocations
    /// count as activity on the session (a touch at most once per
    /// <see cref="ServerSideSessionOptions.TouchInterval"/>), so a user active only over the hub is not idled out. A
    /// renewal of the session's ID for the same user keeps the connection. Connections without a session are allowed.
    /// Needs <c>services.AddServerSideSessions(...)</c>.
    /// </summary>
    /// <param name="builder">The builder <c>AddSignalR()</c> returned.</param>
    /// <returns>The builder, for chaining.</returns>
    public static ISignalRServerBuilder AddServerSideSessions(this ISignalRServerBuilder builder) =>
        builder.AddServerSideSessions(static _ => { });

    /// <summary>
    /// Ties every hub connection to the session of the request that opened it, as
    /// <see cref="AddServerSideSessions(ISignalRServerBuilder)"/> does, with options (e.g.
    /// <see cref="ServerSideSessionHubOptions.RequireSession"/>).
    /// </summary>
    /// <param name="builder">The builder <c>AddSignalR()</c> returned.</param>
    /// <param name="configure">Sets the options.</param>
    /// <returns>The builder, for chaining.</returns>
    /// <remarks>The host fails to start when <c>services.AddServerSideSessions(...)</c> was not called.</remarks>
    public static ISignalRServerBuilder AddServerSideSessions(this ISignalRServerBuilder builder, Action<ServerSideSessionHubOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        var services = builder.Services;
        services.Configure(configure);
        if (!services.Any(static d => d.ServiceType == typeof(SessionHubFilter)))
        {
            services.AddSingleton<SessionHubFilter>();
            services.Configure<HubOptions>(static o => o.AddFilter<SessionHubFilter>());
            services.TryAddEnumerable(ServiceDescriptor.Transient<AspNetCore.Hosting.IStartupFilter, SessionHubStartupCheck>());
        }

        return builder;
    }
}
