using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using SessionMiddleware;
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
    public static IServerSideSessionsBuilder UseStore<TStore>(this IServerSideSessionsBuilder builder)
        where TStore : class, IServerSideSessionStore
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.ReplaceStore(ServiceDescriptor.Singleton<IServerSideSessionStore, TStore>());
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
        return builder.ReplaceStore(ServiceDescriptor.Singleton(factory));
    }

    private static IServerSideSessionsBuilder ReplaceStore(this IServerSideSessionsBuilder builder, ServiceDescriptor store)
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

        services.Replace(store);
        return builder;
    }
}
