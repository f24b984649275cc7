using Microsoft.Data.Sqlite;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>What only the SQLite store does (the shared behaviour is in <see cref="SessionStoreTests"/>).</summary>
public sealed class SqliteStoreTests : TempFolderTest
{
    [Test]
    public async Task Migrate_PutsTheFileInWalMode()
    {
        var db = Folder.File("s.db");
        await StoreFactory.Sqlite(db, StoreFactory.NewTime()).MigrateAsync();

        using var connection = new SqliteConnection($"Data Source={db};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode;";
        var journal = (string)command.ExecuteScalar()!;

        Assert.That(journal, Is.EqualTo("wal"));
    }
}
