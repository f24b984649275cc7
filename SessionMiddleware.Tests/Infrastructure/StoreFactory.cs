using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Cookies;
using SessionMiddleware.Ids;
using SessionMiddleware.Storage.Sqlite;

namespace SessionMiddleware.Tests.Infrastructure;

internal static class StoreFactory
{
    public static FakeTimeProvider NewTime() => new(new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero));

    public static SqliteSessionStore Sqlite(string databasePath, TimeProvider time, Action<ServerSideSessionOptions>? configure = null, TimeSpan? checkpointInterval = null)
    {
        var options = new ServerSideSessionOptions { ConnectionString = $"Data Source={databasePath}" };
        configure?.Invoke(options);
        return new SqliteSessionStore(Options.Create(options), time, NullLogger<SqliteSessionStore>.Instance, checkpointInterval ?? SqliteSessionStore.DefaultCheckpointInterval);
    }

    public static byte[] NewKey() => SessionIds.ComputeKey(SessionIds.NewSecretId(DateTimeOffset.UtcNow));
}
