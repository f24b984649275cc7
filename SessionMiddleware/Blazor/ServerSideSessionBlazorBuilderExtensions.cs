using Microsoft.AspNetCore.Components.Server.Circuits;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.DependencyInjection.Extensions;
using SessionMiddleware.Blazor;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Ties Blazor Server circuits to server-side sessions.</summary>
public static class ServerSideSessionBlazorBuilderExtensions
{
    /// <summary>
    /// Ties every Blazor Server circuit to the server-side session of the request that opened it. When that session ends
    /// (signed out, revoked through <see cref="SessionMiddleware.ISessionManager"/>, expired, ended by a sign-in elsewhere
    /// in the browser, on this server or another), the circuit's <c>AuthenticationStateProvider</c> reports the anonymous
    /// user at once (when it implements <c>IHostEnvironmentAuthenticationStateProvider</c>, as the framework's,
    /// <c>RevalidatingServerAuthenticationStateProvider</c> and Identity's do), so <c>AuthorizeView</c> and
    /// <c>[Authorize]</c> components render signed out; then the circuit is closed and cannot be reconnected, and no
    /// further browser event runs in it. Circuit activity (events, JavaScript interop, navigation) keeps the session alive,
    /// with a touch at most once per <see cref="SessionMiddleware.ServerSideSessionOptions.TouchInterval"/>.
    /// </summary>
    /// <param name="builder">The Blazor Server builder (<c>AddInteractiveServerComponents()</c>).</param>
    /// <returns>The builder, for chaining.</returns>
    /// <remarks>
    /// Needs <c>services.AddServerSideSessions(...)</c> (in any order); the app fails to start with a clear message
    /// without it. A circuit opened by a request without a stored session is not tied to any.
    /// </remarks>
    public static IServerSideBlazorBuilder AddServerSideSessions(this IServerSideBlazorBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        if (services.Any(static d => d.ServiceType == typeof(CircuitSessionHubFilter)))
        {
            return builder;
        }

        services.AddSingleton<CircuitSessionHubFilter>();
        services.Configure<HubOptions>(static options => options.AddFilter<CircuitSessionHubFilter>());
        services.TryAddScoped<CircuitSession>();
        services.TryAddEnumerable(ServiceDescriptor.Scoped<CircuitHandler, SessionCircuitHandler>());
        services.TryAddEnumerable(ServiceDescriptor.Transient<IStartupFilter, BlazorSessionStartupCheck>());
        return builder;
    }
}
