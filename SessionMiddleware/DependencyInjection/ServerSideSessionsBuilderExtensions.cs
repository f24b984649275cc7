using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using SessionMiddleware;
using SessionMiddleware.Diagnostics;
using SessionMiddleware.Storage.Sqlite;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Chooses where server-side sessions are stored.</summary>
public static class ServerSideSessionsBuilderExtensions
{
    /// <summary>
    /// Stores the sessions in <typeparamref name="TStore"/> instead of the SQLite default, created by the container
    /// as a singleton. This is how a store for another database is plugged in (the PostgreSQL package's
    /// <c>UsePostgreSql</c> calls it); the SQLite store and its connection-string check are removed.
    /// </summary>
    /// <typeparam name="TStore">The store.</typeparam>
    /// <param name="builder">The builder <c>AddServerSideSessions(...)</c> returned.</param>
    /// <returns>The builder, for chaining.</returns>
    public static IServerSideSessionsBuilder UseStore<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TStore>(this IServerSideSessionsBuilder builder)
        where TStore : class, IServerSideSessionStore
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.ReplaceStore(ServiceDescriptor.Singleton<IServerSideSessionStore, TStore>(), SessionStoreDescription.Unknown);
    }

    /// <summary>
    /// Stores the sessions in the store <paramref name="factory"/> makes (once, as a singleton) instead of the SQLite
    /// default; the SQLite store and its connection-string check are removed.
    /// </summary>
    /// <param name="builder">The builder <c>AddServerSideSessions(...)</c> returned.</param>
    /// <param name="factory">Makes the store from the app's services.</param>
    /// <returns>The builder, for chaining.</returns>
    public static IServerSideSessionsBuilder UseStore(this IServerSideSessionsBuilder builder, Func<IServiceProvider, IServerSideSessionStore> factory)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(factory);
        return builder.ReplaceStore(ServiceDescriptor.Singleton(factory), SessionStoreDescription.Unknown);
    }

    /// <summary>
    /// Stores the sessions in the store <paramref name="factory"/> makes (once, as a singleton) instead of the SQLite
    /// default, and says which database it is: <paramref name="dbSystemName"/> tags the store's metrics and spans and
    /// names it in the health check (a store registered without one is <c>other_sql</c>).
    /// </summary>
    /// <param name="builder">The builder <c>AddServerSideSessions(...)</c> returned.</param>
    /// <param name="factory">Makes the store from the app's services.</param>
    /// <param name="dbSystemName">OpenTelemetry's <c>db.system.name</c> of the database, for example <c>postgresql</c> or <c>mysql</c>.</param>
    /// <param name="schemaVersion">The version of the table schema the store's <c>CheckSchemaAsync</c> checks, shown by the health check; <see langword="null"/> (the default) for none.</param>
    /// <returns>The builder, for chaining.</returns>
    public static IServerSideSessionsBuilder UseStore(this IServerSideSessionsBuilder builder, Func<IServiceProvider, IServerSideSessionStore> factory, string dbSystemName, int? schemaVersion = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(factory);
        ArgumentException.ThrowIfNullOrWhiteSpace(dbSystemName);
        return builder.ReplaceStore(ServiceDescriptor.Singleton(factory), new SessionStoreDescription(dbSystemName, schemaVersion));
    }

    private static IServerSideSessionsBuilder ReplaceStore(this IServerSideSessionsBuilder builder, ServiceDescriptor store, SessionStoreDescription description)
    {
        var services = builder.Services;

        // The SQLite connection-string check would reject another database's connection string.
        for (var i = services.Count - 1; i >= 0; i--)
        {
            if (services[i].ServiceType == typeof(IValidateOptions<ServerSideSessionOptions>) &&
                services[i].ImplementationType == typeof(SqliteConnectionStringValidator))
            {
                services.RemoveAt(i);
            }
        }

        // Another store's change feed would report another database's ends; a store with a feed of its own registers it after this.
        services.RemoveAll<ISessionChangeFeed>();
        services.Replace(store);
        services.Replace(ServiceDescriptor.Singleton(description));
        return builder;
    }
}
