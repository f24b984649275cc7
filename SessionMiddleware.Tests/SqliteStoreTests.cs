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

    [Test]
    public async Task GroupCommit_AFailingWriteAmongConcurrentOnes_FailsAlone_AndTheOthersAreStored()
    {
        var store = StoreFactory.Sqlite(Folder.File("g.db"), StoreFactory.NewTime());
        await store.MigrateAsync();
        var duplicate = StoreFactory.NewKey();
        await store.CreateAsync(new NewSession(duplicate, [1], null, null, null));
        var keys = Enumerable.Range(0, 60).Select(_ => StoreFactory.NewKey()).ToList();

        // 60 new sessions and one insert of an existing key, all at once: they share group transactions.
        var writes = keys.Select(k => (Task)store.CreateAsync(new NewSession(k, [2], null, null, null))).ToList();
        var failing = store.CreateAsync(new NewSession(duplicate, [3], null, null, null));
        writes.Add(failing);
        await Task.WhenAll(writes.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default)));

        Assert.Multiple(async () =>
        {
            Assert.That(failing.IsFaulted, Is.True);
            Assert.That(failing.Exception!.InnerException, Is.InstanceOf<SqliteException>().With.Property("SqliteErrorCode").EqualTo(19), "UNIQUE constraint");
            Assert.That(writes.Count(t => t.IsCompletedSuccessfully), Is.EqualTo(60));
            foreach (var key in keys)
            {
                Assert.That((await store.LoadAsync(key))?.Data, Is.EqualTo(new byte[] { 2 }));
            }

            Assert.That((await store.LoadAsync(duplicate))?.Data, Is.EqualTo(new byte[] { 1 }), "the failed insert changed nothing");
        });

        await store.DisposeAsync();
    }

    [Test]
    public async Task Dispose_FinishesQueuedWrites_ThenRefusesNewOnes()
    {
        var store = StoreFactory.Sqlite(Folder.File("d.db"), StoreFactory.NewTime());
        await store.MigrateAsync();
        var key = StoreFactory.NewKey();
        var write = store.CreateAsync(new NewSession(key, [1], null, null, null));

        await store.DisposeAsync();

        Assert.Multiple(async () =>
        {
            Assert.That((await write.WaitAsync(TimeSpan.FromSeconds(30))).Version, Is.EqualTo(1), "the queued write was committed");
            Assert.ThrowsAsync<ObjectDisposedException>(() => store.CreateAsync(new NewSession(StoreFactory.NewKey(), [1], null, null, null)));
        });
        var reopened = StoreFactory.Sqlite(Folder.File("d.db"), StoreFactory.NewTime());
        Assert.That(await reopened.LoadAsync(key), Is.Not.Null);
        await reopened.DisposeAsync();
    }
}
