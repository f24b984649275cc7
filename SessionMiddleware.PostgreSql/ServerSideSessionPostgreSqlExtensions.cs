using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using SessionMiddleware;
using SessionMiddleware.PostgreSql;
using SessionMiddleware.PostgreSql.ChangeFeed;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Stores server-side sessions in PostgreSQL, so that several app servers share them. A session ended or renewed on one
/// server also ends (or follows to its new ID) what other servers hold open for it: hub connections, circuits,
/// <see cref="IServerSideSession.Ended"/> (PostgreSQL's <c>LISTEN/NOTIFY</c>, on one connection of each server's own).
/// </summary>
public static class ServerSideSessionPostgreSqlExtensions
{
    /// <summary>
    /// Stores the sessions in PostgreSQL, connecting with <see cref="ServerSideSessionOptions.ConnectionString"/>
    /// as configured (for example bound from the <c>ServerSideSessions</c> configuration section). Chained on
    /// <c>AddServerSideSessions(...)</c>:
    /// <c>services.AddServerSideSessions(configuration.GetSection("ServerSideSessions")).UsePostgreSql();</c>
    /// </summary>
    /// <param name="builder">The builder <c>AddServerSideSessions(...)</c> returned.</param>
    /// <returns>The builder, for chaining.</returns>
    public static IServerSideSessionsBuilder UsePostgreSql(this IServerSideSessionsBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.UsePostgreSqlCore(static _ => { }, static sp => new PostgreSqlSessionDataSource(sp.GetRequiredService<IOptions<ServerSideSessionOptions>>()));
    }

    /// <summary>
    /// Stores the sessions in PostgreSQL, connecting with <paramref name="connectionString"/> (an Npgsql connection
    /// string such as <c>Host=db;Database=app;Username=app;Password=...</c>; it replaces
    /// <see cref="ServerSideSessionOptions.ConnectionString"/>). Chained on <c>AddServerSideSessions(...)</c>:
    /// <c>services.AddServerSideSessions(o =&gt; ...).UsePostgreSql(connectionString);</c>
    /// </summary>
    /// <param name="builder">The builder <c>AddServerSideSessions(...)</c> returned.</param>
    /// <param name="connectionString">The Npgsql connection string.</param>
    /// <returns>The builder, for chaining.</returns>
    public static IServerSideSessionsBuilder UsePostgreSql(this IServerSideSessionsBuilder builder, string connectionString)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        return builder.UsePostgreSqlCore(
            o => o.ConnectionString = connectionString,
            static sp => new PostgreSqlSessionDataSource(sp.GetRequiredService<IOptions<ServerSideSessionOptions>>()));
    }

    /// <summary>
    /// Stores the sessions in PostgreSQL through a data source the app built and owns (for example one with a
    /// password provider); the store does not dispose it. Chained on <c>AddServerSideSessions(...)</c>.
    /// </summary>
    /// <param name="builder">The builder <c>AddServerSideSessions(...)</c> returned.</param>
    /// <param name="dataSource">The Npgsql data source (connection pool) to use.</param>
    /// <returns>The builder, for chaining.</returns>
    public static IServerSideSessionsBuilder UsePostgreSql(this IServerSideSessionsBuilder builder, NpgsqlDataSource dataSource)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(dataSource);
        return builder.UsePostgreSqlCore(
            o => o.ConnectionString = dataSource.ConnectionString,
            _ => new PostgreSqlSessionDataSource(dataSource));
    }

    private static IServerSideSessionsBuilder UsePostgreSqlCore(
        this IServerSideSessionsBuilder builder,
        Action<ServerSideSessionOptions> configure,
        Func<IServiceProvider, PostgreSqlSessionDataSource> dataSource)
    {
        var services = builder.Services;
        services.Configure(configure);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ServerSideSessionOptions>, PostgreSqlConnectionStringValidator>());
        services.RemoveAll<PostgreSqlSessionDataSource>();
        services.AddSingleton(dataSource);

        builder.UseStore(CreateStore, "postgresql", SessionMiddleware.Storage.SessionTableSchema.Version);

        // Ends and renewals committed by other servers reach the connections this one holds (LISTEN/NOTIFY). After
        // UseStore, which drops the feed of the store it replaces.
        services.RemoveAll<ISessionChangeFeed>();
        services.AddSingleton<ISessionChangeFeed>(CreateChangeFeed);
        return builder;
    }

    private static PostgreSqlChangeFeed CreateChangeFeed(IServiceProvider sp) => new(
        sp.GetRequiredService<PostgreSqlSessionDataSource>().DataSource,
        sp.GetRequiredService<IOptions<ServerSideSessionOptions>>().Value.TableName,
        sp.GetRequiredService<ILogger<PostgreSqlChangeFeed>>());

    private static PostgreSqlSessionStore CreateStore(IServiceProvider sp)
    {
        var dataSource = sp.GetRequiredService<PostgreSqlSessionDataSource>();
        return new PostgreSqlSessionStore(
            dataSource.DataSource,
            sp.GetRequiredService<IOptions<ServerSideSessionOptions>>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<PostgreSqlSessionStore>>(),
            dataSource.WriterDataSource);
    }
}
