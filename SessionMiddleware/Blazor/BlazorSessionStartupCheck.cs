using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using SessionMiddleware.DependencyInjection;

namespace SessionMiddleware.Blazor;

/// <summary>
/// Fails the app's start with a clear message when circuits were tied to sessions but the sessions themselves were not
/// added (<c>services.AddServerSideSessions(...)</c>), in whatever order the two were registered.
/// </summary>
internal sealed class BlazorSessionStartupCheck : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        if (app.ApplicationServices.GetService<ServerSideSessionMarkerService>() is null)
        {
            throw new InvalidOperationException(
                "AddInteractiveServerComponents().AddServerSideSessions() ties circuits to server-side sessions, which were not added: " +
                "call builder.Services.AddServerSideSessions(...) too.");
        }

        next(app);
    };
}
