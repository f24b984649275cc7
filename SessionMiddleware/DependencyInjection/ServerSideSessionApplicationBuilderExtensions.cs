using Microsoft.Extensions.DependencyInjection;
using SessionMiddleware;
using SessionMiddleware.DependencyInjection;
using SessionMiddleware.Middleware;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Adds the server-side session middleware to the pipeline.</summary>
public static class ServerSideSessionApplicationBuilderExtensions
{
    /// <summary>
    /// Gives every later middleware and endpoint a server-side <c>HttpContext.Session</c>. Place it before
    /// the endpoints that use the session.
    /// </summary>
    /// <param name="app">The application builder.</param>
    /// <returns>The application builder, for chaining.</returns>
    /// <exception cref="InvalidOperationException"><c>services.AddServerSideSessions(...)</c> was not called.</exception>
    public static IApplicationBuilder UseServerSideSessions(this IApplicationBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        if (app.ApplicationServices.GetService<ServerSideSessionMarkerService>() is null)
        {
            throw new InvalidOperationException(
                "UseServerSideSessions() needs the session services: call builder.Services.AddServerSideSessions(...) when registering services.");
        }

        return app.UseMiddleware<ServerSideSessionMiddleware>();
    }
}
