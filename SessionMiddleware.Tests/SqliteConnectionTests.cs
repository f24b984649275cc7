using Dapper;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>Every connection the SQLite store hands out, new or reused from the pool, has its pragmas set.</summary>
public sealed class SqliteConnectionTests : TempFolderTest
{
    [Test]
    public async Task StoreConnections_NewAndPooled_HaveBusyTimeoutSynchronousNormalAndWal()
    {
        var store = StoreFactory.Sqlite(Folder.File("c.db"), StoreFactory.NewTime(), o => o.BusyTimeout = TimeSpan.FromMilliseconds(1234));
        await store.MigrateAsync();

        for (var i = 0; i < 3; i++)
        {
            await using var connection = await store.OpenAsync(CancellationToken.None);
            Assert.Multiple(async () =>
            {
                Assert.That(await connection.ExecuteScalarAsync<long>("PRAGMA busy_timeout;"), Is.EqualTo(1234), $"open #{i + 1}");
                Assert.That(await connection.ExecuteScalarAsync<long>("PRAGMA synchronous;"), Is.EqualTo(1), "NORMAL");
                Assert.That(await connection.ExecuteScalarAsync<string>("PRAGMA journal_mode;"), Is.EqualTo("wal"));
            });
        }
    }
}
