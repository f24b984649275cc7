using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Storage.Sqlite;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>The SQLite store on a real file: loads, optimistic updates, touches, expiry, batched deletes.</summary>
public sealed class SqliteStoreTests
{
    private TempFolder _folder = null!;
    private FakeTimeProvider _time = null!;
    private SqliteSessionStore _store = null!;
    private string _db = null!;

    [SetUp]
    public async Task SetUp()
    {
        _folder = new TempFolder();
        _time = StoreFactory.NewTime();
        _db = _folder.File("s.db");
        _store = StoreFactory.Sqlite(_db, _time, o =>
        {
            o.IdleTimeout = TimeSpan.FromMinutes(20);
            o.AbsoluteTimeout = TimeSpan.FromHours(8);
        });
        await _store.MigrateAsync();
    }

    [TearDown]
    public void TearDown() => _folder.Dispose();

    [Test]
    public async Task Create_ThenLoad_ReturnsTheRow()
    {
        var key = StoreFactory.NewKey();

        var created = await _store.CreateAsync(new NewSession(key, [1, 2, 3], "u1", "127.0.0.1", "ua"));
        var loaded = await _store.LoadAsync(key);

        Assert.Multiple(() =>
        {
            Assert.That(created.Version, Is.EqualTo(1));
            Assert.That(loaded, Is.Not.Null);
            Assert.That(loaded!.Data, Is.EqualTo(new byte[] { 1, 2, 3 }));
            Assert.That(loaded.Version, Is.EqualTo(1));
            Assert.That(loaded.UserId, Is.EqualTo("u1"));
            Assert.That(loaded.CreatedAt, Is.EqualTo(_time.GetUtcNow()));
        });
    }

    [Test]
    public async Task Load_UnknownKey_ReturnsNull()
    {
        Assert.That(await _store.LoadAsync(StoreFactory.NewKey()), Is.Null);
    }

    [Test]
    public async Task Update_WithTheLoadedVersion_Commits_AndWithAStaleOne_Conflicts()
    {
        var key = StoreFactory.NewKey();
        await _store.CreateAsync(new NewSession(key, [1], null, null, null));

        var first = await _store.UpdateAsync(key, [2], expectedVersion: 1);
        var stale = await _store.UpdateAsync(key, [3], expectedVersion: 1);
        var loaded = await _store.LoadAsync(key);

        Assert.Multiple(() =>
        {
            Assert.That(first, Is.EqualTo(new SessionUpdateResult(SessionUpdateStatus.Committed, 2)));
            Assert.That(stale.Status, Is.EqualTo(SessionUpdateStatus.Conflict));
            Assert.That(loaded!.Data, Is.EqualTo(new byte[] { 2 }), "the stale update wrote nothing");
        });
    }

    [Test]
    public async Task Update_OfADeletedRow_IsNotFound_AndNeverRecreatesIt()
    {
        var key = StoreFactory.NewKey();
        await _store.CreateAsync(new NewSession(key, [1], null, null, null));
        await _store.DeleteAsync(key);

        var result = await _store.UpdateAsync(key, [2], expectedVersion: 1);

        Assert.Multiple(async () =>
        {
            Assert.That(result.Status, Is.EqualTo(SessionUpdateStatus.NotFound));
            Assert.That(await _store.LoadAsync(key), Is.Null);
        });
    }

    [Test]
    public async Task Update_OfAnExpiredRow_IsNotFound()
    {
        var key = StoreFactory.NewKey();
        await _store.CreateAsync(new NewSession(key, [1], null, null, null));
        _time.Advance(TimeSpan.FromMinutes(21));

        var result = await _store.UpdateAsync(key, [2], expectedVersion: 1);

        Assert.That(result.Status, Is.EqualTo(SessionUpdateStatus.NotFound));
    }

    [Test]
    public async Task Load_PastIdleTimeout_ReturnsNullAndDeletesTheRow()
    {
        var key = StoreFactory.NewKey();
        await _store.CreateAsync(new NewSession(key, [1], null, null, null));

        _time.Advance(TimeSpan.FromMinutes(20));
        var atLimit = await _store.LoadAsync(key);
        _time.Advance(TimeSpan.FromSeconds(1));
        var past = await _store.LoadAsync(key);

        Assert.Multiple(() =>
        {
            Assert.That(atLimit, Is.Not.Null, "idle exactly IdleTimeout is still alive");
            Assert.That(past, Is.Null);
            Assert.That(CountRows(), Is.Zero);
        });
    }

    [Test]
    public async Task Load_PastAbsoluteTimeout_ReturnsNullWhateverTheActivity()
    {
        var key = StoreFactory.NewKey();
        await _store.CreateAsync(new NewSession(key, [1], null, null, null));
        for (var i = 0; i < 26; i++)
        {
            _time.Advance(TimeSpan.FromMinutes(19));
            await _store.TouchAsync(key);
        }

        Assert.That(await _store.LoadAsync(key), Is.Null, "the 8-hour absolute timeout passed after 494 minutes of activity");
    }

    [Test]
    public async Task Touch_UpdatesLastAccessOnly()
    {
        var key = StoreFactory.NewKey();
        await _store.CreateAsync(new NewSession(key, [1], null, null, null));
        _time.Advance(TimeSpan.FromMinutes(5));

        var touched = await _store.TouchAsync(key);
        var loaded = await _store.LoadAsync(key);

        Assert.Multiple(() =>
        {
            Assert.That(touched, Is.True);
            Assert.That(loaded!.LastAccessAt, Is.EqualTo(_time.GetUtcNow()));
            Assert.That(loaded.Version, Is.EqualTo(1), "a touch is not a data change");
        });
    }

    [Test]
    public async Task DeleteExpired_DeletesOnlyExpiredRows_AtMostMaxRowsAStatement()
    {
        var live = new List<byte[]>();
        for (var i = 0; i < 25; i++)
        {
            await _store.CreateAsync(new NewSession(StoreFactory.NewKey(), [1], null, null, null));
        }

        _time.Advance(TimeSpan.FromMinutes(15));
        for (var i = 0; i < 5; i++)
        {
            var key = StoreFactory.NewKey();
            live.Add(key);
            await _store.CreateAsync(new NewSession(key, [1], null, null, null));
        }

        _time.Advance(TimeSpan.FromMinutes(10)); // the first 25 are 25 minutes idle, the last 5 only 10

        var batches = new List<int>();
        int deleted;
        do
        {
            deleted = await _store.DeleteExpiredAsync(10);
            batches.Add(deleted);
        }
        while (deleted == 10);

        Assert.Multiple(async () =>
        {
            Assert.That(batches, Is.EqualTo(new[] { 10, 10, 5 }));
            Assert.That(CountRows(), Is.EqualTo(5));
            foreach (var key in live)
            {
                Assert.That(await _store.LoadAsync(key), Is.Not.Null);
            }
        });
    }

    [Test]
    public async Task MissingTable_GivesAClearErrorNamingTheTableAndTheMigrationCall()
    {
        var other = StoreFactory.Sqlite(_folder.File("empty.db"), _time, o => o.TableName = "app_sessions");

        var ex = Assert.ThrowsAsync<InvalidOperationException>(() => other.LoadAsync(StoreFactory.NewKey()));

        Assert.That(ex!.Message, Does.Contain("\"app_sessions\"").And.Contain("MigrateServerSideSessionsAsync"));
        await Task.CompletedTask;
    }

    [Test]
    public async Task Connection_UsesWalAndNormalSynchronous()
    {
        using var connection = new SqliteConnection($"Data Source={_db}");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode;";
        var journal = (string)command.ExecuteScalar()!;

        Assert.That(journal, Is.EqualTo("wal"));
        await Task.CompletedTask;
    }

    private long CountRows()
    {
        using var connection = new SqliteConnection($"Data Source={_db};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM sessions";
        return (long)command.ExecuteScalar()!;
    }
}
