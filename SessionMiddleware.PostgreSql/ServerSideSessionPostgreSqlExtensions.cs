using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using SessionMiddleware;
using SessionMiddleware.PostgreSql;
using SessionMiddleware.Storage.Sqlite;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Stores server-side sessions in PostgreSQL, so that several app servers share them.</summary>
public static class ServerSideSessionPostgreSqlExtensions
{
    /// <summary>
    /// Stores the sessions in PostgreSQL, connecting with <see cref="ServerSideSessionOptions.ConnectionString"/>
    /// as configured (for example bound from the <c>ServerSideSessions</c> configuration section). Call it after
    /// <c>AddServerSideSessions(...)</c>:
    /// <c>services.AddServerSideSessions(configuration.GetSection("ServerSideSessions")).UsePostgreSql();</c>
    /// </summary>
    /// <param name="services">The service collection, with <c>AddServerSideSessions(...)</c> already called.</param>
    /// <returns>The service collection, for chaining.</returns>
    /// <exception cref="InvalidOperationException"><c>AddServerSideSessions(...)</c> was not called first.</exception>
    public static IServiceCollection UsePostgreSql(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        return services.UsePostgreSqlCore(static _ => { }, static sp => new PostgreSqlSessionDataSource(sp.GetRequiredService<IOptions<ServerSideSessionOptions>>()));
    }

    /// <summary>
    /// Stores the sessions in PostgreSQL, connecting with <paramref name="connectionString"/> (an Npgsql connection
    /// string such as <c>Host=db;Database=app;Username=app;Password=...</c>; it replaces
    /// <see cref="ServerSideSessionOptions.ConnectionString"/>). Call it after <c>AddServerSideSessions(...)</c>:
    /// <c>services.AddServerSideSessions(o =&gt; ...).UsePostgreSql(connectionString);</c>
    /// </summary>
    /// <param name="services">The service collection, with <c>AddServerSideSessions(...)</c> already called.</param>
    /// <param name="connectionString">The Npgsql connection string.</param>
    /// <returns>The service collection, for chaining.</returns>
    /// <exception cref="InvalidOperationException"><c>AddServerSideSessions(...)</c> was not called first.</exception>
    public static IServiceCollection UsePostgreSql(this IServiceCollection services, string connectionString)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        return services.UsePostgreSqlCore(
            o => o.ConnectionString = connectionString,
            static sp => new PostgreSqlSessionDataSource(sp.GetRequiredService<IOptions<ServerSideSessionOptions>>()));
    }

    /// <summary>
    /// Stores the sessions in PostgreSQL through a data source the app built and owns (for example one with a
    /// password provider); the store does not dispose it. Call it after <c>AddServerSideSessions(...)</c>.
    /// </summary>
    /// <param name="services">The service collection, with <c>AddServerSideSessions(...)</c> already called.</param>
    /// <param name="dataSource">The Npgsql data source (connection pool) to use.</param>
    /// <returns>The service collection, for chaining.</returns>
    /// <exception cref="InvalidOperationException"><c>AddServerSideSessions(...)</c> was not called first.</exception>
    public static IServiceCollection UsePostgreSql(this IServiceCollection services, NpgsqlDataSource dataSource)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(dataSource);
        return services.UsePostgreSqlCore(
            o => o.ConnectionString = dataSource.ConnectionString,
            _ => new PostgreSqlSessionDataSource(dataSource));
    }

    private static IServiceCollection UsePostgreSqlCore(
        this IServiceCollection services,
        Action<ServerSideSessionOptions> configure,
        Func<IServiceProvider, PostgreSqlSessionDataSource> dataSource)
    {
        if (!services.Any(d => d.ServiceType == typeof(ServerSideSessionMarkerService)))
        {
            throw new InvalidOperationException(
                "UsePostgreSql() changes where the session services store sessions: call services.AddServerSideSessions(...) first, then .UsePostgreSql(...).");
        }

        services.Configure(configure);

        // The SQLite connection-string check would reject a PostgreSQL connection string.
        services.RemoveWhere(d =>
            d.ServiceType == typeof(IValidateOptions<ServerSideSessionOptions>) &&
            d.ImplementationType == typeof(SqliteConnectionStringValidator));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ServerSideSessionOptions>, PostgreSqlConnectionStringValidator>());

        services.RemoveAll<PostgreSqlSessionDataSource>();
        services.AddSingleton(dataSource);
        services.Replace(ServiceDescriptor.Singleton<ISessionStore>(static sp => new PostgreSqlSessionStore(
            sp.GetRequiredService<PostgreSqlSessionDataSource>().DataSource,
            sp.GetRequiredService<IOptions<ServerSideSessionOptions>>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<PostgreSqlSessionStore>>())));
        return services;
    }

    private static void RemoveWhere(this IServiceCollection services, Func<ServiceDescriptor, bool> match)
    {
        for (var i = services.Count - 1; i >= 0; i--)
        {
            if (match(services[i]))
            {
                services.RemoveAt(i);
            }
        }
    }
}
