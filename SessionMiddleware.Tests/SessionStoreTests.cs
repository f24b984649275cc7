using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Cleanup;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// The behaviour every store must have, run against each one on a real database: a SQLite file and a PostgreSQL
/// server. Loads, optimistic updates, renewals, touches, expiry, user listing, batched deletes (also from several
/// stores at once), the migration and the cleaner's runs. SQLite-only checks are in <see cref="SqliteStoreTests"/>.
/// </summary>
[TestFixture(StoreBackend.Sqlite)]
[TestFixture(StoreBackend.Postgres)]
public sealed class SessionStoreTests(string kind)
{
    private StoreBackend _db = null!;
    private FakeTimeProvider _time = null!;

    [SetUp]
    public async Task SetUp()
    {
        _time = StoreFactory.NewTime();
        _db = await StoreBackend.CreateAsync(kind);
    }

    [TearDown]
    public async Task TearDown() => await _db.DisposeAsync();

    private IServerSideSessionStore NewStore(Action<ServerSideSessionOptions>? configure = null) => _db.CreateStore(_time, o =>
    {
        o.IdleTimeout = TimeSpan.FromMinutes(20);
        o.AbsoluteTimeout = TimeSpan.FromHours(8);
        configure?.Invoke(o);
    });

    private async Task<IServerSideSessionStore> MigratedStoreAsync(Action<ServerSideSessionOptions>? configure = null)
    {
        var store = NewStore(configure);
        await store.MigrateAsync();
        return store;
    }

    private static NewSession Row(byte[] key, byte[]? data = null, string? user = null) => new(key, data ?? [1], user, null, null);

    // ---- loads, writes, expiry ----

    [Test]
    public async Task Create_ThenLoad_ReturnsTheRow()
    {
        var store = await MigratedStoreAsync();
        var key = StoreFactory.NewKey();

        var created = await store.CreateAsync(new NewSession(key, [1, 2, 3], "u1", "127.0.0.1", "ua"));
        var loaded = await store.LoadAsync(key);

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
        var store = await MigratedStoreAsync();

        Assert.That(await store.LoadAsync(StoreFactory.NewKey()), Is.Null);
    }

    [Test]
    public async Task Update_WithTheLoadedVersion_Commits_AndWithAStaleOne_Conflicts()
    {
        var store = await MigratedStoreAsync();
        var key = StoreFactory.NewKey();
        await store.CreateAsync(Row(key));

        var first = await store.UpdateAsync(key, [2], expectedVersion: 1);
        var stale = await store.UpdateAsync(key, [3], expectedVersion: 1);
        var loaded = await store.LoadAsync(key);

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
        var store = await MigratedStoreAsync();
        var key = StoreFactory.NewKey();
        await store.CreateAsync(Row(key));
        await store.DeleteAsync(key);

        var result = await store.UpdateAsync(key, [2], expectedVersion: 1);

        Assert.Multiple(async () =>
        {
            Assert.That(result.Status, Is.EqualTo(SessionUpdateStatus.NotFound));
            Assert.That(await store.LoadAsync(key), Is.Null);
            Assert.That(await _db.CountRowsAsync(), Is.Zero);
        });
    }

    [Test]
    public async Task Update_OfAnExpiredRow_IsNotFound()
    {
        var store = await MigratedStoreAsync();
        var key = StoreFactory.NewKey();
        await store.CreateAsync(Row(key));
        _time.Advance(TimeSpan.FromMinutes(21));

        var result = await store.UpdateAsync(key, [2], expectedVersion: 1);

        Assert.That(result.Status, Is.EqualTo(SessionUpdateStatus.NotFound));
    }

    [Test]
    public async Task Updates_OfOneVersionFromSeveralStoresAtOnce_ExactlyOneCommits()
    {
        var store = await MigratedStoreAsync();
        var key = StoreFactory.NewKey();
        await store.CreateAsync(Row(key));
        var stores = Enumerable.Range(0, 8).Select(_ => NewStore()).ToList();

        var results = await Task.WhenAll(stores.Select((s, i) => Task.Run(() => s.UpdateAsync(key, [(byte)(10 + i)], expectedVersion: 1))));
        var loaded = await store.LoadAsync(key);

        Assert.Multiple(() =>
        {
            Assert.That(results.Count(r => r.Status == SessionUpdateStatus.Committed), Is.EqualTo(1));
            Assert.That(results.Count(r => r.Status == SessionUpdateStatus.Conflict), Is.EqualTo(7));
            Assert.That(loaded!.Version, Is.EqualTo(2));
            var winner = Array.FindIndex(results, r => r.Status == SessionUpdateStatus.Committed);
            Assert.That(loaded.Data, Is.EqualTo(new[] { (byte)(10 + winner) }), "the committed data is the winner's");
        });
    }

    [Test]
    public async Task Load_PastIdleTimeout_ReturnsNullAndDeletesTheRow()
    {
        var store = await MigratedStoreAsync();
        var key = StoreFactory.NewKey();
        await store.CreateAsync(Row(key));

        _time.Advance(TimeSpan.FromMinutes(20));
        var atLimit = await store.LoadAsync(key);
        _time.Advance(TimeSpan.FromSeconds(1));
        var past = await store.LoadAsync(key);

        Assert.Multiple(async () =>
        {
            Assert.That(atLimit, Is.Not.Null, "idle exactly IdleTimeout is still alive");
            Assert.That(past, Is.Null);
            Assert.That(await _db.CountRowsAsync(), Is.Zero, "the expired row was deleted on load");
        });
    }

    [Test]
    public async Task Load_PastAbsoluteTimeout_ReturnsNullWhateverTheActivity()
    {
        var store = await MigratedStoreAsync();
        var key = StoreFactory.NewKey();
        await store.CreateAsync(Row(key));
        for (var i = 0; i < 26; i++)
        {
            _time.Advance(TimeSpan.FromMinutes(19));
            await store.TouchAsync(key);
        }

        Assert.That(await store.LoadAsync(key), Is.Null, "the 8-hour absolute timeout passed after 494 minutes of activity");
    }

    [Test]
    public async Task Touch_UpdatesLastAccessOnly_AndOfAnExpiredRowIsFalse()
    {
        var store = await MigratedStoreAsync();
        var key = StoreFactory.NewKey();
        await store.CreateAsync(Row(key));
        _time.Advance(TimeSpan.FromMinutes(5));

        var touched = await store.TouchAsync(key);
        var loaded = await store.LoadAsync(key);
        _time.Advance(TimeSpan.FromMinutes(21));
        var touchedWhenExpired = await store.TouchAsync(key);

        Assert.Multiple(() =>
        {
            Assert.That(touched, Is.True);
            Assert.That(loaded!.LastAccessAt, Is.EqualTo(_time.GetUtcNow() - TimeSpan.FromMinutes(21)));
            Assert.That(loaded.Version, Is.EqualTo(1), "a touch is not a data change");
            Assert.That(touchedWhenExpired, Is.False);
        });
    }

    // ---- renewal (new ID) ----

    [Test]
    public async Task Renew_MovesTheRowToTheNewKey_KeepingCreationTime_AndKillsTheOldKey()
    {
        var store = await MigratedStoreAsync();
        var oldKey = StoreFactory.NewKey();
        var newKey = StoreFactory.NewKey();
        var createdAt = _time.GetUtcNow();
        await store.CreateAsync(new NewSession(oldKey, [1], "u1", "10.0.0.1", "old agent"));
        _time.Advance(TimeSpan.FromMinutes(3));

        var result = await store.RenewAsync(oldKey, 1, new NewSession(newKey, [2], "u2", "10.0.0.2", "new agent"));
        var renewed = await store.LoadAsync(newKey);
        var list = await store.ListByUserAsync("u2");

        Assert.Multiple(async () =>
        {
            Assert.That(result, Is.EqualTo(new SessionUpdateResult(SessionUpdateStatus.Committed, 2)));
            Assert.That(await store.LoadAsync(oldKey), Is.Null, "the old key is dead");
            Assert.That(renewed!.Data, Is.EqualTo(new byte[] { 2 }));
            Assert.That(renewed.UserId, Is.EqualTo("u2"));
            Assert.That(renewed.Version, Is.EqualTo(2));
            Assert.That(renewed.CreatedAt, Is.EqualTo(createdAt), "renewal keeps the creation time (absolute timeout)");
            Assert.That(renewed.LastAccessAt, Is.EqualTo(_time.GetUtcNow()));
            Assert.That(list.Single().IpAddress, Is.EqualTo("10.0.0.2"));
            Assert.That(list.Single().UserAgent, Is.EqualTo("new agent"));
            Assert.That(await _db.CountRowsAsync(), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task Renew_WithAStaleVersion_Conflicts_AndOfADeletedRow_IsNotFound_WritingNothing()
    {
        var store = await MigratedStoreAsync();
        var key = StoreFactory.NewKey();
        await store.CreateAsync(Row(key));
        await store.UpdateAsync(key, [2], 1);

        var stale = await store.RenewAsync(key, 1, Row(StoreFactory.NewKey()));
        await store.DeleteAsync(key);
        var gone = await store.RenewAsync(key, 2, Row(StoreFactory.NewKey()));

        Assert.Multiple(async () =>
        {
            Assert.That(stale.Status, Is.EqualTo(SessionUpdateStatus.Conflict));
            Assert.That(gone.Status, Is.EqualTo(SessionUpdateStatus.NotFound));
            Assert.That(await _db.CountRowsAsync(), Is.Zero, "neither renewal created a row");
        });
    }

    [Test]
    public async Task Renewals_OfOneSessionFromSeveralStoresAtOnce_AtMostOneCommits_AndOneRowRemains()
    {
        var store = await MigratedStoreAsync();
        var key = StoreFactory.NewKey();
        await store.CreateAsync(Row(key));
        var stores = Enumerable.Range(0, 6).Select(_ => NewStore()).ToList();
        var newKeys = stores.Select(_ => StoreFactory.NewKey()).ToList();

        var results = await Task.WhenAll(stores.Select((s, i) => Task.Run(() => s.RenewAsync(key, 1, Row(newKeys[i])))));

        Assert.Multiple(async () =>
        {
            Assert.That(results.Count(r => r.Status == SessionUpdateStatus.Committed), Is.EqualTo(1));
            Assert.That(await _db.CountRowsAsync(), Is.EqualTo(1), "one session, under one key");
            var winner = Array.FindIndex(results, r => r.Status == SessionUpdateStatus.Committed);
            Assert.That(await store.LoadAsync(newKeys[winner]), Is.Not.Null);
        });
    }

    // ---- users ----

    [Test]
    public async Task ListByUser_GivesLiveSessionsMostRecentFirst_AndDeleteByUser_KeepsTheExceptedOne()
    {
        var store = await MigratedStoreAsync();
        var older = StoreFactory.NewKey();
        var newer = StoreFactory.NewKey();
        var expired = StoreFactory.NewKey();
        await store.CreateAsync(Row(expired, user: "alice"));
        _time.Advance(TimeSpan.FromMinutes(15));
        await store.CreateAsync(new NewSession(older, [1], "alice", "10.0.0.1", "agent 1"));
        _time.Advance(TimeSpan.FromMinutes(6));
        await store.CreateAsync(new NewSession(newer, [1], "alice", null, null));
        await store.CreateAsync(Row(StoreFactory.NewKey(), user: "bob"));

        var list = await store.ListByUserAsync("alice");
        var deleted = await store.DeleteByUserAsync("alice", exceptKey: newer);
        var deletedAll = await store.DeleteByUserAsync("bob", exceptKey: null);

        Assert.Multiple(async () =>
        {
            Assert.That(list.Select(s => s.Id), Is.EqualTo(new[] { Convert.ToHexStringLower(newer), Convert.ToHexStringLower(older) }), "expired one left out");
            Assert.That(list[1].IpAddress, Is.EqualTo("10.0.0.1"));
            Assert.That(list[1].UserAgent, Is.EqualTo("agent 1"));
            Assert.That(list[1].CreatedAt, Is.EqualTo(_time.GetUtcNow() - TimeSpan.FromMinutes(6)));
            Assert.That(deleted, Is.EqualTo(1), "the older one; the expired one is deleted too but was no longer a session");
            Assert.That(deletedAll, Is.EqualTo(1));
            Assert.That(await store.LoadAsync(newer), Is.Not.Null);
            Assert.That(await _db.CountRowsAsync(), Is.EqualTo(1));
        });
    }

    // ---- expired rows ----

    [Test]
    public async Task DeleteExpired_DeletesOnlyExpiredRows_AtMostMaxRowsAStatement()
    {
        var store = await MigratedStoreAsync();
        await CreateManyAsync(store, 25);
        _time.Advance(TimeSpan.FromMinutes(15));
        var live = await CreateManyAsync(store, 5);
        _time.Advance(TimeSpan.FromMinutes(10)); // the first 25 are 25 minutes idle, the last 5 only 10

        var batches = new List<int>();
        int deleted;
        do
        {
            deleted = await store.DeleteExpiredAsync(10);
            batches.Add(deleted);
        }
        while (deleted == 10);

        Assert.Multiple(async () =>
        {
            Assert.That(batches, Is.EqualTo(new[] { 10, 10, 5 }));
            Assert.That(await _db.CountRowsAsync(), Is.EqualTo(5));
            foreach (var key in live)
            {
                Assert.That(await store.LoadAsync(key), Is.Not.Null);
            }
        });
    }

    [Test]
    public async Task DeleteExpired_FromSeveralStoresAtOnce_DeletesEveryExpiredRowOnce_WithoutErrors()
    {
        var store = await MigratedStoreAsync();
        await CreateManyAsync(store, 1_500);
        _time.Advance(TimeSpan.FromMinutes(15));
        var live = await CreateManyAsync(store, 20);
        _time.Advance(TimeSpan.FromMinutes(10));
        var cleaners = Enumerable.Range(0, 3).Select(_ => NewStore()).ToList();

        var counts = await Task.WhenAll(cleaners.Select(c => Task.Run(async () =>
        {
            var total = 0;
            int deleted;
            do
            {
                deleted = await c.DeleteExpiredAsync(50);
                total += deleted;
            }
            while (deleted == 50);

            return total;
        })));
        TestContext.Out.WriteLine($"{kind}: rows deleted by each of 3 concurrent cleaners: {string.Join(", ", counts)}");

        Assert.Multiple(async () =>
        {
            Assert.That(counts.Sum(), Is.EqualTo(1_500), "each expired row deleted exactly once");
            Assert.That(await _db.CountRowsAsync(), Is.EqualTo(20));
            Assert.That(await store.LoadAsync(live[0]), Is.Not.Null);
        });
    }

    [Test]
    public async Task MissingTable_GivesAClearErrorNamingTheTableAndTheMigrationCall()
    {
        var other = NewStore(o => o.TableName = "app_sessions");

        var ex = Assert.ThrowsAsync<InvalidOperationException>(() => other.LoadAsync(StoreFactory.NewKey()));

        Assert.That(ex!.Message, Does.Contain("\"app_sessions\"").And.Contain("MigrateServerSideSessionsAsync"));
        await Task.CompletedTask;
    }

    // ---- migration ----

    [Test]
    public async Task Migrate_OnAnEmptyDatabase_CreatesTheTableIndexesAndSchemaVersion()
    {
        await NewStore().MigrateAsync();

        var objects = await _db.ObjectsAsync();
        Assert.Multiple(async () =>
        {
            Assert.That(objects, Is.SupersetOf(new[]
            {
                "table:sessions", "table:__session_middleware_schema",
                "index:ix_sessions_last_access", "index:ix_sessions_created_at", "index:ix_sessions_user_id",
            }));
            Assert.That(await _db.QueryAsync("SELECT table_name || '=' || version FROM __session_middleware_schema"), Is.EqualTo(new[] { "sessions=1" }));
        });
    }

    [Test]
    public async Task Migrate_Twice_ChangesNothing_AndKeepsTheData()
    {
        var store = await MigratedStoreAsync();
        var key = StoreFactory.NewKey();
        await store.CreateAsync(Row(key, [42]));
        var schemaBefore = await _db.SchemaAsync();

        _time.Advance(TimeSpan.FromMinutes(1));
        await NewStore().MigrateAsync();

        Assert.Multiple(async () =>
        {
            Assert.That(await _db.SchemaAsync(), Is.EqualTo(schemaBefore));
            Assert.That((await store.LoadAsync(key))!.Data, Is.EqualTo(new byte[] { 42 }));
        });
    }

    [Test]
    public async Task Migrate_FromSeveralStoresAtOnce_AllSucceed()
    {
        var stores = Enumerable.Range(0, 6).Select(_ => NewStore()).ToList();

        await Task.WhenAll(stores.Select(s => Task.Run(() => s.MigrateAsync())));

        Assert.That((await _db.ObjectsAsync()).Count(o => o == "table:sessions"), Is.EqualTo(1));
    }

    [Test]
    public async Task Migrate_AgainstATableOfAnotherShape_ThrowsNamingTableAndColumns_AndLeavesItUntouched()
    {
        await _db.ExecuteAsync($"CREATE TABLE sessions (id {_db.TextType} PRIMARY KEY, value {_db.TextType}, expires {_db.IntegerType}); INSERT INTO sessions VALUES ('x', 'user data', 1);");
        var before = await _db.SchemaAsync();

        var ex = Assert.ThrowsAsync<SessionStoreSchemaException>(() => NewStore().MigrateAsync());

        Assert.Multiple(async () =>
        {
            Assert.That(ex!.TableName, Is.EqualTo("sessions"));
            Assert.That(ex.Message, Does.Contain("\"sessions\""));
            Assert.That(ex.Message, Does.Contain($"id {_db.BlobType}").And.Contain($"last_access {_db.IntegerType}"), "expected columns");
            Assert.That(ex.Message, Does.Contain($"id {_db.TextType}").And.Contain($"expires {_db.IntegerType}"), "found columns");
            Assert.That(ex.FoundColumns, Is.EqualTo(new[] { $"id {_db.TextType} PRIMARY KEY", $"value {_db.TextType}", $"expires {_db.IntegerType}" }));
            Assert.That(await _db.SchemaAsync(), Is.EqualTo(before), "schema untouched");
            Assert.That(await _db.QueryAsync("SELECT value FROM sessions"), Is.EqualTo(new[] { "user data" }), "data untouched");
        });
    }

    [Test]
    public void Migrate_AgainstSameColumnsWithoutThePrimaryKey_Throws()
    {
        string b = _db.BlobType, t = _db.TextType, i = _db.IntegerType;
        Assert.That(
            () => _db.ExecuteAsync($"CREATE TABLE sessions (id {b}, user_id {t}, data {b}, created_at {i}, last_access {i}, version {i}, ip {t}, user_agent {t});"),
            Throws.Nothing);

        var ex = Assert.ThrowsAsync<SessionStoreSchemaException>(() => NewStore().MigrateAsync());

        Assert.That(ex!.Message, Does.Contain($"id {b} PRIMARY KEY"));
    }

    [Test]
    public void Migrate_AgainstANewerSchemaVersion_Throws()
    {
        Assert.That(
            () => _db.ExecuteAsync("CREATE TABLE __session_middleware_schema (table_name TEXT NOT NULL PRIMARY KEY, version INTEGER NOT NULL, migrated_at INTEGER NOT NULL); INSERT INTO __session_middleware_schema VALUES ('sessions', 99, 0);"),
            Throws.Nothing);

        var ex = Assert.ThrowsAsync<SessionStoreSchemaException>(() => NewStore().MigrateAsync());

        Assert.That(ex!.Message, Does.Contain("99").And.Contain("newer"));
    }

    [Test]
    public async Task Migrate_WithACustomTableName_UsesIt()
    {
        var store = await MigratedStoreAsync(o => o.TableName = "App_Sessions_2");
        var key = StoreFactory.NewKey();
        await store.CreateAsync(Row(key));

        Assert.Multiple(async () =>
        {
            Assert.That(await _db.ObjectsAsync(), Does.Contain("table:App_Sessions_2").And.Not.Contain("table:sessions"));
            Assert.That(await _db.CountRowsAsync("App_Sessions_2"), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task Migrate_WithTheLongestAllowedTableName_CreatesThreeDistinctIndexes_AndIsIdempotent()
    {
        var name = "s" + new string('x', 62);
        await MigratedStoreAsync(o => o.TableName = name);
        await MigratedStoreAsync(o => o.TableName = name);

        var indexes = (await _db.ObjectsAsync()).Where(o => o.StartsWith("index:ix_", StringComparison.Ordinal)).ToList();

        Assert.That(indexes, Has.Count.EqualTo(3), "one index each on last_access, created_at, user_id");
        if (kind == StoreBackend.Postgres)
        {
            Assert.That(indexes, Has.All.Length.LessThanOrEqualTo("index:".Length + 63), "PostgreSQL keeps 63 characters of a name");
        }
    }

    // ---- the cleaner's runs over this store ----

    [Test]
    public async Task CleanerRun_DeletesExactlyTheExpiredRows_InBatches_AndLogsTheCount()
    {
        var options = new ServerSideSessionOptions
        {
            IdleTimeout = TimeSpan.FromMinutes(20),
            AbsoluteTimeout = TimeSpan.FromHours(2),
            CleanupBatchSize = 10,
        };
        var store = new FaultyStore(_db.CreateStore(_time, o =>
        {
            o.IdleTimeout = options.IdleTimeout;
            o.AbsoluteTimeout = options.AbsoluteTimeout;
        }));
        await store.MigrateAsync();

        var tooOld = await CreateManyAsync(store, 7);     // created first, kept active: only the absolute timeout ends them
        _time.Advance(TimeSpan.FromMinutes(90));
        var idle = await CreateManyAsync(store, 23);      // will be idle 30 minutes
        _time.Advance(TimeSpan.FromMinutes(15));
        var live = await CreateManyAsync(store, 4);       // will be idle 15 minutes
        _time.Advance(TimeSpan.FromMinutes(15));
        foreach (var key in tooOld)
        {
            await store.TouchAsync(key);                  // active, but 120 minutes old
        }

        _time.Advance(TimeSpan.FromMinutes(1));
        var logger = new FakeLogger<SessionCleanupService>();
        var cleaner = new SessionCleanupService(store, _time, Options.Create(options), logger);

        var deleted = await cleaner.RunOnceAsync(CancellationToken.None);

        Assert.Multiple(async () =>
        {
            Assert.That(deleted, Is.EqualTo(30));
            Assert.That(store.DeleteExpiredCalls, Is.EqualTo(4), "batches of 10: 10, 10, 10, 0");
            foreach (var key in live)
            {
                Assert.That(await store.LoadAsync(key), Is.Not.Null);
            }

            Assert.That(await _db.CountRowsAsync(), Is.EqualTo(4));
            var log = logger.Collector.LatestRecord;
            Assert.That(log.Id.Name, Is.EqualTo("CleanupCompleted"));
            Assert.That(log.Message, Does.Contain("deleted 30 expired sessions in 4 batches"));
        });
        Assert.That(idle, Has.Count.EqualTo(23));
    }

    [Test]
    public async Task CleanerRun_AfterAStoreFailure_LogsIt_AndTheNextRunDeletes()
    {
        var options = new ServerSideSessionOptions { IdleTimeout = TimeSpan.FromMinutes(20) };
        var store = new FaultyStore(_db.CreateStore(_time, o => o.IdleTimeout = options.IdleTimeout));
        await store.MigrateAsync();
        await CreateManyAsync(store, 3);
        _time.Advance(TimeSpan.FromMinutes(21));
        var logger = new FakeLogger<SessionCleanupService>();
        var cleaner = new SessionCleanupService(store, _time, Options.Create(options), logger);
        var error = _db.DatabaseError();

        store.OnDeleteExpired = () => error;
        var failed = await cleaner.RunOnceAsync(CancellationToken.None);
        var failureLog = logger.Collector.LatestRecord;
        store.OnDeleteExpired = null;
        var recovered = await cleaner.RunOnceAsync(CancellationToken.None);

        Assert.Multiple(async () =>
        {
            Assert.That(failed, Is.Zero);
            Assert.That(failureLog.Level, Is.EqualTo(LogLevel.Error));
            Assert.That(failureLog.Id.Name, Is.EqualTo("CleanupFailed"));
            Assert.That(failureLog.Exception, Is.SameAs(error));
            Assert.That(recovered, Is.EqualTo(3));
            Assert.That(await _db.CountRowsAsync(), Is.Zero);
        });
    }

    private static async Task<List<byte[]>> CreateManyAsync(IServerSideSessionStore store, int count)
    {
        var keys = new List<byte[]>();
        for (var i = 0; i < count; i++)
        {
            var key = StoreFactory.NewKey();
            keys.Add(key);
            await store.CreateAsync(Row(key));
        }

        return keys;
    }
}
