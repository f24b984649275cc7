using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using SessionMiddleware.DependencyInjection;

namespace SessionMiddleware.SignalR;

/// <summary>Fails the start of an app that called <c>AddSignalR().AddServerSideSessions()</c> without the session services.</summary>
internal sealed class SessionHubStartupCheck(IServiceProvider services) : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next)
    {
        if (services.GetService<ServerSideSessionMarkerService>() is null)
        {
            throw new InvalidOperationException(
                "AddSignalR().AddServerSideSessions() needs the session services: call builder.Services.AddServerSideSessions(...) when registering services.");
        }

        return next;
    }
}
