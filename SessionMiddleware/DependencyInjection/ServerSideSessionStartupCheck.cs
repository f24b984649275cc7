using Microsoft.AspNetCore.Session;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SessionMiddleware.Logging;

namespace SessionMiddleware.DependencyInjection;

/// <summary>
/// Runs when the host starts, before any hosted service's <c>StartAsync</c> (so before Kestrel listens and the cleaner
/// runs), and after <c>MigrateServerSideSessionsAsync</c>, which apps call between <c>Build()</c> and <c>Run()</c>:
/// checks the session table (so a table never migrated fails startup, not the first request) and warns when ASP.NET
/// Core's own session is registered too.
/// </summary>
internal sealed class ServerSideSessionStartupCheck(
    IServerSideSessionStore store,
    IServiceProviderIsService services,
    ILogger<ServerSideSessionStartupCheck> logger) : IHostedLifecycleService
{
    public async Task StartingAsync(CancellationToken cancellationToken)
    {
        // AddSession() registers ISessionStore; UseSession() cannot run without it, so this finds both.
        if (services.IsService(typeof(ISessionStore)))
        {
            Log.AspNetCoreSessionAlsoRegistered(logger);
        }

        await store.CheckSchemaAsync(cancellationToken).ConfigureAwait(false);
        Log.SchemaChecked(logger, Storage.SessionTableSchema.Version);
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
