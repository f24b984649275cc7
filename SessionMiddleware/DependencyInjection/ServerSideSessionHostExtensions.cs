using Microsoft.Extensions.DependencyInjection;
using SessionMiddleware;
using SessionMiddleware.DependencyInjection;

namespace Microsoft.Extensions.Hosting;

/// <summary>Prepares the session store at startup.</summary>
public static class ServerSideSessionHostExtensions
{
    /// <summary>
    /// Creates the session table and indexes when missing, or checks that the existing table has the
    /// expected shape. Idempotent and safe when several processes start at once; never alters user data.
    /// Call it once at startup, before <c>app.Run()</c>.
    /// </summary>
    /// <param name="host">The host (a <c>WebApplication</c> is one).</param>
    /// <param name="cancellationToken">Cancels the migration.</param>
    /// <exception cref="SessionStoreSchemaException">A table of that name exists with another shape.</exception>
    /// <exception cref="InvalidOperationException"><c>services.AddServerSideSessions(...)</c> was not called.</exception>
    public static async Task MigrateServerSideSessionsAsync(this IHost host, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (host.Services.GetService<ServerSideSessionMarkerService>() is null)
        {
            throw new InvalidOperationException(
                "MigrateServerSideSessionsAsync() needs the session services: call builder.Services.AddServerSideSessions(...) when registering services.");
        }

        var store = host.Services.GetRequiredService<IServerSideSessionStore>();
        await store.MigrateAsync(cancellationToken).ConfigureAwait(false);
    }
}
