using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SessionMiddleware;
using SessionMiddleware.Cleanup;
using SessionMiddleware.Concurrency;
using SessionMiddleware.Configuration;
using SessionMiddleware.Cookies;
using SessionMiddleware.Diagnostics;
using SessionMiddleware.DependencyInjection;
using SessionMiddleware.Events;
using SessionMiddleware.Live;
using SessionMiddleware.Management;
using SessionMiddleware.Middleware;
using SessionMiddleware.Session;
using SessionMiddleware.Storage.Sqlite;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers server-side sessions.</summary>
public static class ServerSideSessionServiceCollectionExtensions
{
    /// <summary>
    /// Adds server-side sessions with the default options: SQLite file <c>sessions.db</c>, 20 minutes idle timeout.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <returns>A builder to chain the store and the features on (<c>.UsePostgreSql(...)</c>, …).</returns>
    public static IServerSideSessionsBuilder AddServerSideSessions(this IServiceCollection services) =>
        services.AddServerSideSessions(static _ => { });

    /// <summary>Adds server-side sessions, configured by <paramref name="configure"/>.</summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets the options.</param>
    /// <returns>A builder to chain the store and the features on (<c>.UsePostgreSql(...)</c>, …).</returns>
    public static IServerSideSessionsBuilder AddServerSideSessions(this IServiceCollection services, Action<ServerSideSessionOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.Configure(configure);
        return services.AddServerSideSessionsCore();
    }

    /// <summary>
    /// Adds server-side sessions, with options bound from a configuration section such as
    /// <c>ServerSideSessions</c> (time spans written as <c>"00:20:00"</c>).
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="section">The configuration section holding the options.</param>
    /// <returns>A builder to chain the store and the features on (<c>.UsePostgreSql(...)</c>, …).</returns>
    public static IServerSideSessionsBuilder AddServerSideSessions(this IServiceCollection services, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(section);
        services.Configure<ServerSideSessionOptions>(section);
        return services.AddServerSideSessionsCore();
    }

    /// <summary>What the default store says it is (see <see cref="SessionStoreDescription"/>).</summary>
    private static readonly SessionStoreDescription SqliteStoreDescription = new("sqlite", SessionMiddleware.Storage.SessionTableSchema.Version);

    private static SessionStoreDescription DescribeRegisteredStore(IServiceCollection services) =>
        services.LastOrDefault(static d => d.ServiceType == typeof(IServerSideSessionStore) && !d.IsKeyedService)?.ImplementationType == typeof(SqliteSessionStore)
            ? SqliteStoreDescription
            : SessionStoreDescription.Unknown;

    private static ServerSideSessionsBuilder AddServerSideSessionsCore(this IServiceCollection services)
    {
        services.AddOptions<ServerSideSessionOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ServerSideSessionOptions>, ServerSideSessionOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ServerSideSessionOptions>, SqliteConnectionStringValidator>());
        services.AddDataProtection();
        services.AddLogging();
        services.AddMetrics();
        services.TryAddSingleton<SessionMetrics>();
        services.TryAddSingleton<IWriteBatchObserver>(static sp => sp.GetRequiredService<SessionMetrics>());
        services.TryAddSingleton(static sp =>
        {
            var options = sp.GetRequiredService<IOptions<ServerSideSessionOptions>>().Value;
            return new SessionEvents(options.Events, options.AbsoluteTimeout, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<SessionEvents>>(), sp.GetRequiredService<SessionMetrics>(), sp.GetRequiredService<LiveSessionRegistry>());
        });
        services.TryAddSingleton<CleanupStatus>();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<SessionIdProtector>();
        services.TryAddSingleton<SessionCookies>();
        services.TryAddSingleton<SessionDataProtector>();
        services.TryAddSingleton<CommitLocks>();
        services.TryAddSingleton<RecentRenewals>();
        services.TryAddSingleton<IServerSideSessionStore, SqliteSessionStore>();
        // The SQLite store's description, unless the app registered a store of its own in the container directly (UseStore
        // registers its store's description in place of this one).
        services.TryAddSingleton(_ => DescribeRegisteredStore(services));
        services.TryAddKeyedSingleton<IServerSideSessionStore>(
            InstrumentedSessionStore.ServiceKey,
            static (sp, _) => new InstrumentedSessionStore(sp.GetRequiredService<IServerSideSessionStore>(), sp.GetRequiredService<SessionMetrics>()));
        services.TryAddSingleton<NewSessionGate>();
        services.TryAddSingleton<LiveSessionRegistry>();
        services.TryAddSingleton<LiveSessionConnections>();
        services.TryAddSingleton<SessionRuntime>();
        services.TryAddSingleton<ISessionManager, SessionManager>();
        services.TryAddSingleton<ServerSideSessionMarkerService>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, ServerSideSessionStartupCheck>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, SessionCleanupService>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, LiveSessionMonitor>());
        return new ServerSideSessionsBuilder(services);
    }
}
