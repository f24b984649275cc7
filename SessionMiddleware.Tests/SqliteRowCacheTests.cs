using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Storage.Sqlite;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// The SQLite store's row cache (<see cref="ServerSideSessionOptions.RowCacheSize"/>): a load of a row nobody changed is
/// answered from memory, and no load ever answers a row as it was before a commit, whoever made it. Two store instances on
/// one file are two connections to SQLite, as two processes are (the real processes: ProcessTests). Every test runs with
/// the watch reading the WAL index header (the default on a file) and with it running <c>PRAGMA data_version</c> (where the
/// header cannot be read).
/// </summary>
[TestFixture(true)]
[TestFixture(false)]
public sealed class SqliteRowCacheTests(bool readsHeader) : TempFolderTest
{
    private FakeTimeProvider _time = null!;
    private SqliteSessionStore _a = null!;
    private SqliteSessionStore _b = null!;

    [SetUp]
    public async Task StartTwoStores()
    {
        _time = StoreFactory.NewTime();
        var db = Folder.File("shared.db");
        _a = Store(db);
        _b = Store(db);
        await _a.MigrateAsync();
    }

    private SqliteSessionStore Store(string db) => new(
        SqliteStoreSettings.From(new ServerSideSessionOptions { ConnectionString = $"Data Source={db}" }) with { RowCacheReadsDataVersionOnly = !readsHeader },
        _time, Microsoft.Extensions.Logging.Abstractions.NullLogger<SqliteSessionStore>.Instance, SqliteSessionStore.DefaultCheckpointInterval);

    [Test]
    public async Task TheWatch_ReadsTheWalIndexHeader_OnAFile()
    {
        var key = await CreateAsync(_a, [1]);
        await _a.LoadAsync(key);

        Assert.That(_a.RowCache!.WatchesHeader, Is.EqualTo(readsHeader));
    }

    [Test]
    public async Task ManyCommitsOfAnotherProcess_EachStopTheCache_UntilTheNextLoad()
    {
        // Every commit writes the header anew (its change counter and checksum): none may look like the one before.
        var key = await CreateAsync(_a, [0]);
        for (var i = 1; i <= 50; i++)
        {
            await _a.LoadAsync(key);
            var update = await _b.UpdateAsync(key, [(byte)i], expectedVersion: i);
            Assert.That(update.Status, Is.EqualTo(SessionUpdateStatus.Committed));
            var loaded = await _a.LoadAsync(key);
            Assert.That(loaded!.Data, Is.EqualTo(new byte[] { (byte)i }), $"after B's commit {i}");
        }
    }

    [TearDown]
    public async Task StopStores()
    {
        await _a.DisposeAsync();
        await _b.DisposeAsync();
    }

    [Test]
    public async Task ALoadOfARowNobodyChanged_IsAnsweredFromMemory()
    {
        var key = await CreateAsync(_a, [1]);

        await _a.LoadAsync(key);
        var again = await _a.LoadAsync(key);

        Assert.Multiple(() =>
        {
            Assert.That(again!.Data, Is.EqualTo(new byte[] { 1 }));
            Assert.That(_a.RowCache!.Hits, Is.EqualTo(1), "the second load read no table");
        });
    }

    [Test]
    public async Task AnotherProcessesUpdate_IsLoadedAtOnce()
    {
        var key = await CreateAsync(_a, [1]);
        await _a.LoadAsync(key);
        await _a.LoadAsync(key);

        var update = await _b.UpdateAsync(key, [2], expectedVersion: 1);
        var loaded = await _a.LoadAsync(key);

        Assert.Multiple(() =>
        {
            Assert.That(update.Status, Is.EqualTo(SessionUpdateStatus.Committed));
            Assert.That(loaded!.Data, Is.EqualTo(new byte[] { 2 }));
            Assert.That(loaded.Version, Is.EqualTo(2));
        });
    }

    [Test]
    public async Task AnotherProcessesRevoke_IsLoadedAtOnce()
    {
        var key = await CreateAsync(_a, [1]);
        await _a.LoadAsync(key);

        await _b.DeleteAsync(key);

        Assert.That(await _a.LoadAsync(key), Is.Null);
    }

    [Test]
    public async Task AnotherProcessesCommit_BetweenTwoOfThisProcesssOwnWrites_IsLoaded()
    {
        // The writer's own commit moves the version too: after it, the cache must still know that B committed before it.
        var x = await CreateAsync(_a, [1]);
        var y = await CreateAsync(_a, [1]);
        await _a.LoadAsync(x);
        await _a.LoadAsync(y);

        await _b.UpdateAsync(x, [2], expectedVersion: 1);
        await _a.UpdateAsync(y, [3], expectedVersion: 1);

        Assert.Multiple(async () =>
        {
            Assert.That((await _a.LoadAsync(x))!.Data, Is.EqualTo(new byte[] { 2 }));
            Assert.That((await _a.LoadAsync(y))!.Data, Is.EqualTo(new byte[] { 3 }));
        });
    }

    [Test]
    public async Task ARowLoadedBeforeAnotherProcesssCommit_IsNotKept_AfterTheCommit()
    {
        // A load that read the table before B's commit adds its row only after another load saw the commit.
        var x = await CreateAsync(_a, [1]);
        var y = await CreateAsync(_a, [1]);
        await _a.LoadAsync(x);
        var (before, versionBefore) = await _a.RowCache!.GetAsync(x, CancellationToken.None);

        await _b.UpdateAsync(x, [2], expectedVersion: 1);
        await _a.LoadAsync(y);
        _a.RowCache.Add(x, before!, versionBefore);

        Assert.That((await _a.LoadAsync(x))!.Data, Is.EqualTo(new byte[] { 2 }));
    }

    [Test]
    public async Task ThisProcesssOwnUpdate_KeepsTheRowInMemory_AsStored()
    {
        var key = await CreateAsync(_a, [1]);
        await _a.LoadAsync(key);
        _time.Advance(TimeSpan.FromMinutes(3));

        await _a.UpdateAsync(key, [5], expectedVersion: 1);
        var hits = _a.RowCache!.Hits;
        var cached = await _a.LoadAsync(key);
        var stored = await _b.LoadAsync(key);

        Assert.Multiple(() =>
        {
            Assert.That(_a.RowCache.Hits, Is.EqualTo(hits + 1), "answered from memory");
            Assert.That(cached, Is.EqualTo(stored).Using<StoredSession>(SameRow), "the row in memory is the row in the table");
            Assert.That(cached!.Data, Is.EqualTo(new byte[] { 5 }));
        });
    }

    [Test]
    public async Task ThisProcesssOwnTouch_KeepsTheRowInMemory_AsStored()
    {
        var key = await CreateAsync(_a, [1]);
        await _a.LoadAsync(key);
        _time.Advance(TimeSpan.FromMinutes(3));

        Assert.That(await _a.TouchAsync(key), Is.True);
        var cached = await _a.LoadAsync(key);
        var stored = await _b.LoadAsync(key);

        Assert.Multiple(() =>
        {
            Assert.That(cached, Is.EqualTo(stored).Using<StoredSession>(SameRow));
            Assert.That(cached!.LastAccessAt, Is.EqualTo(DateTimeOffset.FromUnixTimeSeconds(_time.GetUtcNow().ToUnixTimeSeconds())));
        });
    }

    [TestCase("delete")]
    [TestCase("delete by user")]
    [TestCase("delete by sign-in")]
    [TestCase("renew")]
    public async Task ThisProcesssOwnEnd_IsNeverLoadedAgain(string how)
    {
        var key = await CreateAsync(_a, [1], new SessionSignIn(_time.GetUtcNow(), "https://idp", "sid-1", "sub-1", null));
        await _a.LoadAsync(key);

        switch (how)
        {
            case "delete":
                await _a.DeleteAsync(key);
                break;
            case "delete by user":
                await _a.DeleteByUserAsync("alice", null, 10);
                break;
            case "delete by sign-in":
                await _a.DeleteBySignInAsync(SessionSignInFilter.ProviderSession("https://idp", "sid-1"), null, 10);
                break;
            case "renew":
                var renewed = StoreFactory.NewKey();
                await _a.RenewAsync(key, 1, new NewSession(renewed, [1], "alice", null, null));
                Assert.That((await _a.LoadAsync(renewed))!.Data, Is.EqualTo(new byte[] { 1 }));
                break;
        }

        Assert.That(await _a.LoadAsync(key), Is.Null);
    }

    [Test]
    public async Task TheCacheKeepsAtMostRowCacheSizeRows_AndLoadsStayRight()
    {
        await using var small = StoreFactory.Sqlite(Folder.File("small.db"), _time, o => o.RowCacheSize = 3);
        await small.MigrateAsync();
        var keys = new List<byte[]>();
        for (var i = 0; i < 8; i++)
        {
            keys.Add(await CreateAsync(small, [(byte)i]));
        }

        for (var round = 0; round < 2; round++)
        {
            for (var i = 0; i < keys.Count; i++)
            {
                Assert.That((await small.LoadAsync(keys[i]))!.Data, Is.EqualTo(new byte[] { (byte)i }));
                Assert.That(small.RowCache!.Count, Is.LessThanOrEqualTo(3));
            }
        }
    }

    [Test]
    public async Task TheCacheKeepsAtMostItsBytesOfData_AndARowOverAQuarterOfThem_IsNotKept()
    {
        var settings = SqliteStoreSettings.From(new ServerSideSessionOptions { ConnectionString = $"Data Source={Folder.File("bytes.db")}" }) with { RowCacheSize = 100, RowCacheMaxBytes = 4096 };
        await using var store = new SqliteSessionStore(settings, _time, Microsoft.Extensions.Logging.Abstractions.NullLogger<SqliteSessionStore>.Instance, SqliteSessionStore.DefaultCheckpointInterval);
        await store.MigrateAsync();
        var keys = new List<byte[]>();
        for (var i = 0; i < 8; i++)
        {
            keys.Add(await CreateAsync(store, Enumerable.Repeat((byte)i, 1000).ToArray()));
        }

        for (var i = 0; i < keys.Count; i++)
        {
            Assert.That((await store.LoadAsync(keys[i]))!.Data, Is.EqualTo(Enumerable.Repeat((byte)i, 1000).ToArray()));
            Assert.That(store.RowCache!.Bytes, Is.LessThanOrEqualTo(4096));
        }

        Assert.That(store.RowCache!.Count, Is.EqualTo(4), "four rows of 1,000 bytes fit in 4,096");

        var large = await CreateAsync(store, new byte[1025]);
        await store.LoadAsync(large);
        var hits = store.RowCache.Hits;
        await store.LoadAsync(large);
        Assert.That(store.RowCache.Hits, Is.EqualTo(hits), "a row over a quarter of the bytes is read from the table each time");
    }

    [Test]
    public async Task RowCacheSizeZero_TurnsTheCacheOff()
    {
        await using var off = StoreFactory.Sqlite(Folder.File("off.db"), _time, o => o.RowCacheSize = 0);
        await off.MigrateAsync();
        var key = await CreateAsync(off, [1]);

        Assert.Multiple(async () =>
        {
            Assert.That(off.RowCache, Is.Null);
            Assert.That((await off.LoadAsync(key))!.Data, Is.EqualTo(new byte[] { 1 }));
        });
    }

    private async Task<byte[]> CreateAsync(SqliteSessionStore store, byte[] data, SessionSignIn? signIn = null)
    {
        var key = StoreFactory.NewKey();
        await store.CreateAsync(new NewSession(key, data, "alice", null, null) { SignIn = signIn });
        return key;
    }

    private static bool SameRow(StoredSession? x, StoredSession? y) =>
        x is not null && y is not null && x.Key.AsSpan().SequenceEqual(y.Key) && x.Data.AsSpan().SequenceEqual(y.Data) &&
        x.Version == y.Version && x.UserId == y.UserId && x.CreatedAt == y.CreatedAt && x.LastAccessAt == y.LastAccessAt &&
        x.ExpiresAt == y.ExpiresAt && Equals(x.SignIn, y.SignIn);
}
