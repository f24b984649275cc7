using System.Globalization;
using System.Security.Cryptography;
using Microsoft.Extensions.Time.Testing;

namespace SessionMiddleware.Specification.Tests;

/// <summary>
/// The behaviour every <see cref="IServerSideSessionStore"/> must have, run on a real database: loads, optimistic
/// updates, renewals, touches, expiry, user listing, batched deletes (also from several stores at once) and the
/// migration. Subclass it in an NUnit test project (mark the subclass <c>[TestFixture]</c>) and supply a fresh
/// database per test, a store over it and a few raw-database helpers; every test here then runs against your store.
/// </summary>
/// <remarks>
/// The suite expects the SessionMiddleware schema: a table named by <see cref="ServerSideSessionOptions.TableName"/>
/// (default <c>sessions</c>) with the columns <c>id</c>, <c>user_id</c>, <c>data</c>, <c>created_at</c>,
/// <c>last_access</c>, <c>version</c>, <c>ip</c>, <c>user_agent</c>, <c>expires_at</c>, and the sign-in columns of schema 4
/// (<c>signed_in_at</c>, <c>idp_issuer</c>, <c>idp_sid</c>, <c>idp_subject</c>, <c>credential_stamp</c>), indexes
/// <c>ix_{table}_expires_at</c>, <c>ix_{table}_created_at</c>, <c>ix_{table}_user_id</c>, <c>ix_{table}_idp_sid</c>,
/// <c>ix_{table}_idp_subject</c> and the schema version table
/// <c>__session_middleware_schema</c>, as the SQLite and PostgreSQL stores create them.
/// </remarks>
public abstract partial class ServerSideSessionStoreSpecificationTests
{
    // The schema of the remarks above, as a store of this family records it: part of the contract the suite checks,
    // so written here rather than read from the library's own stores.
    private const string SchemaVersionTable = "__session_middleware_schema";
    private const int SchemaVersion = 4;

    private readonly List<IServerSideSessionStore> _stores = [];
    private FakeTimeProvider _time = null!;

    /// <summary>Initializes the fixture; a subclass supplies the database and the store through the abstract members.</summary>
    protected ServerSideSessionStoreSpecificationTests()
    {
    }

    /// <summary>Creates the test's empty database, then starts the test clock.</summary>
    /// <returns>A task that completes when the database is ready.</returns>
    [SetUp]
    public async Task SetUpDatabaseAsync()
    {
        _time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero));
        await CreateDatabaseAsync();
    }

    /// <summary>Disposes the stores the test made (those that are disposable), then deletes the test's database.</summary>
    /// <returns>A task that completes when the database is gone.</returns>
    [TearDown]
    public async Task TearDownDatabaseAsync()
    {
        foreach (var store in _stores)
        {
            if (store is IAsyncDisposable asyncDisposable)
            {
                await asyncDisposable.DisposeAsync();
            }
            else if (store is IDisposable disposable)
            {
                disposable.Dispose();
            }
        }

        _stores.Clear();
        await DeleteDatabaseAsync();
    }

    // ---- what the store author supplies ----

    /// <summary>
    /// Creates an empty database (or schema) for one test; called before each test. The other members work on it
    /// until <see cref="DeleteDatabaseAsync"/>.
    /// </summary>
    /// <returns>A task that completes when the database exists.</returns>
    protected abstract Task CreateDatabaseAsync();

    /// <summary>Deletes the test's database; called after each test, after the stores made by the test are disposed.</summary>
    /// <returns>A task that completes when the database is gone.</returns>
    protected abstract Task DeleteDatabaseAsync();

    /// <summary>
    /// A new store over the test's database, as another process would have one (the suite makes several at once to
    /// test concurrency). Tests call it with their own timeouts and table name in <paramref name="options"/>; add what
    /// the store needs to reach the database (such as <see cref="ServerSideSessionOptions.ConnectionString"/>) and
    /// take the current time from <paramref name="timeProvider"/> only. The suite does not call
    /// <see cref="IServerSideSessionStore.MigrateAsync"/> unless the test says so. A store that is
    /// <see cref="IAsyncDisposable"/> or <see cref="IDisposable"/> is disposed at the end of the test.
    /// </summary>
    /// <param name="options">The options of the store: the tests set <see cref="ServerSideSessionOptions.IdleTimeout"/>,
    /// <see cref="ServerSideSessionOptions.AbsoluteTimeout"/> and sometimes <see cref="ServerSideSessionOptions.TableName"/>.</param>
    /// <param name="timeProvider">The test clock (a <see cref="FakeTimeProvider"/> the tests advance).</param>
    /// <returns>The store.</returns>
    protected abstract IServerSideSessionStore CreateStore(ServerSideSessionOptions options, TimeProvider timeProvider);

    /// <summary>Runs SQL (possibly several statements separated by <c>;</c>) against the test's database.</summary>
    /// <param name="sql">The SQL text.</param>
    /// <returns>A task that completes when the SQL has run.</returns>
    protected abstract Task ExecuteAsync(string sql);

    /// <summary>Runs a query against the test's database and returns the first column of every row as invariant text.</summary>
    /// <param name="sql">The query.</param>
    /// <returns>The first column of each row, in the order the query returns them (<see langword="null"/> as empty text).</returns>
    protected abstract Task<IReadOnlyList<string>> QueryAsync(string sql);

    /// <summary>The tables and indexes of the test's database, as <c>table:name</c> and <c>index:name</c> (the database's own objects left out).</summary>
    /// <returns>The objects, in any order.</returns>
    protected abstract Task<IReadOnlyList<string>> ListObjectsAsync();

    /// <summary>
    /// A text dump of the test's schema: the definition of every table (or column) and index, in a stable order, to
    /// compare before and after a migration.
    /// </summary>
    /// <returns>One line per definition.</returns>
    protected abstract Task<IReadOnlyList<string>> DumpSchemaAsync();

    /// <summary>The dialect's name of the binary column type, as the store's schema check reports it (e.g. <c>BLOB</c>, <c>bytea</c>).</summary>
    protected abstract string BlobType { get; }

    /// <summary>The dialect's name of the text column type, as the store's schema check reports it (e.g. <c>TEXT</c>, <c>text</c>).</summary>
    protected abstract string TextType { get; }

    /// <summary>The dialect's name of the 64-bit integer column type, as the store's schema check reports it (e.g. <c>INTEGER</c>, <c>bigint</c>).</summary>
    protected abstract string IntegerType { get; }

    /// <summary>
    /// The longest identifier the database keeps, if it cuts longer names (PostgreSQL: 63); <see langword="null"/>
    /// (the default) when it keeps names whole. Used to check the index names made for a long table name.
    /// </summary>
    protected virtual int? MaxIdentifierLength => null;

    /// <summary>
    /// The number of rows of a table. The default runs <c>SELECT COUNT(*) FROM "table"</c> through
    /// <see cref="QueryAsync"/>; override it for a database that quotes names otherwise.
    /// </summary>
    /// <param name="table">The table name, unquoted.</param>
    /// <returns>The row count.</returns>
    protected virtual async Task<long> CountRowsAsync(string table = "sessions") =>
        long.Parse((await QueryAsync($"SELECT COUNT(*) FROM \"{table}\"")).Single(), CultureInfo.InvariantCulture);

    // ---- helpers ----

    private IServerSideSessionStore NewStore(Action<ServerSideSessionOptions>? configure = null)
    {
        var options = new ServerSideSessionOptions
        {
            IdleTimeout = TimeSpan.FromMinutes(20),
            AbsoluteTimeout = TimeSpan.FromHours(8),
        };
        configure?.Invoke(options);
        var store = CreateStore(options, _time);
        lock (_stores)
        {
            _stores.Add(store);
        }

        return store;
    }

    private async Task<IServerSideSessionStore> MigratedStoreAsync(Action<ServerSideSessionOptions>? configure = null)
    {
        var store = NewStore(configure);
        await store.MigrateAsync();
        return store;
    }

    // A key as the middleware makes one: the SHA-256 hash of a random secret ID, so 32 random bytes.
    private static byte[] NewKey() => RandomNumberGenerator.GetBytes(32);

    private static NewSession Row(byte[] key, byte[]? data = null, string? user = null) => new(key, data ?? [1], user, null, null);

    private static async Task<List<byte[]>> CreateManyAsync(IServerSideSessionStore store, int count)
    {
        var keys = new List<byte[]>();
        for (var i = 0; i < count; i++)
        {
            var key = NewKey();
            keys.Add(key);
            await store.CreateAsync(Row(key));
        }

        return keys;
    }

    // ---- loads, writes, expiry ----

    /// <summary>A created session loads back with its data, user, version 1 and creation time.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task Create_ThenLoad_ReturnsTheRow()
    {
        var store = await MigratedStoreAsync();
        var key = NewKey();

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

    /// <summary>Loading a key that was never stored returns <see langword="null"/>.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task Load_UnknownKey_ReturnsNull()
    {
        var store = await MigratedStoreAsync();

        Assert.That(await store.LoadAsync(NewKey()), Is.Null);
    }

    /// <summary>An update with the current version commits and bumps it; one with a stale version conflicts and writes nothing.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task Update_WithTheLoadedVersion_Commits_AndWithAStaleOne_Conflicts()
    {
        var store = await MigratedStoreAsync();
        var key = NewKey();
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

    /// <summary>An update of a deleted session is not found and does not bring the row back.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task Update_OfADeletedRow_IsNotFound_AndNeverRecreatesIt()
    {
        var store = await MigratedStoreAsync();
        var key = NewKey();
        await store.CreateAsync(Row(key));
        await store.DeleteAsync(key);

        var result = await store.UpdateAsync(key, [2], expectedVersion: 1);

        Assert.Multiple(async () =>
        {
            Assert.That(result.Status, Is.EqualTo(SessionUpdateStatus.NotFound));
            Assert.That(await store.LoadAsync(key), Is.Null);
            Assert.That(await CountRowsAsync(), Is.Zero);
        });
    }

    /// <summary>An update of a session past its idle timeout is not found.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task Update_OfAnExpiredRow_IsNotFound()
    {
        var store = await MigratedStoreAsync();
        var key = NewKey();
        await store.CreateAsync(Row(key));
        _time.Advance(TimeSpan.FromMinutes(21));

        var result = await store.UpdateAsync(key, [2], expectedVersion: 1);

        Assert.That(result.Status, Is.EqualTo(SessionUpdateStatus.NotFound));
    }

    /// <summary>Concurrent updates of one version from several stores: exactly one commits, the others conflict, the winner's data is stored.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task Updates_OfOneVersionFromSeveralStoresAtOnce_ExactlyOneCommits()
    {
        var store = await MigratedStoreAsync();
        var key = NewKey();
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

    /// <summary>A session idle exactly the idle timeout still loads; one second later it is gone and its row deleted.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task Load_PastIdleTimeout_ReturnsNull_AndLeavesTheRowForTheCleaner()
    {
        var store = await MigratedStoreAsync();
        var key = NewKey();
        await store.CreateAsync(Row(key));

        _time.Advance(TimeSpan.FromMinutes(20));
        var atLimit = await store.LoadAsync(key);
        _time.Advance(TimeSpan.FromSeconds(1));
        var past = await store.LoadAsync(key);

        Assert.Multiple(async () =>
        {
            Assert.That(atLimit, Is.Not.Null, "idle exactly IdleTimeout is still alive");
            Assert.That(past, Is.Null);
            Assert.That(await CountRowsAsync(), Is.EqualTo(1), "a load never deletes: the cleaner raises the expiry's event, then deletes");
            Assert.That((await store.ListExpiredAsync(null, 10)).Select(r => r.Key), Is.EqualTo(new[] { key }));
        });
    }

    /// <summary>A session past its absolute timeout does not load, however recently it was touched.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task Load_PastAbsoluteTimeout_ReturnsNullWhateverTheActivity()
    {
        var store = await MigratedStoreAsync();
        var key = NewKey();
        await store.CreateAsync(Row(key));
        for (var i = 0; i < 26; i++)
        {
            _time.Advance(TimeSpan.FromMinutes(19));
            await store.TouchAsync(key);
        }

        Assert.That(await store.LoadAsync(key), Is.Null, "the 8-hour absolute timeout passed after 494 minutes of activity");
    }

    /// <summary>A touch moves the last access time only (not the version); a touch of an expired session returns <see langword="false"/>.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task Touch_UpdatesLastAccessOnly_AndOfAnExpiredRowIsFalse()
    {
        var store = await MigratedStoreAsync();
        var key = NewKey();
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

    /// <summary>A renewal moves the session to a new key with the new data, user and device, keeps its creation time and leaves no row under the old key.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task Renew_MovesTheRowToTheNewKey_KeepingCreationTime_AndKillsTheOldKey()
    {
        var store = await MigratedStoreAsync();
        var oldKey = NewKey();
        var newKey = NewKey();
        var createdAt = _time.GetUtcNow();
        await store.CreateAsync(new NewSession(oldKey, [1], "u1", "10.0.0.1", "old agent"));
        _time.Advance(TimeSpan.FromMinutes(3));

        var result = await store.RenewAsync(oldKey, 1, new NewSession(newKey, [2], "u2", "10.0.0.2", "new agent"));
        var renewed = await store.LoadAsync(newKey);
        var list = await store.ListByUserAsync("u2", limit: 10);

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
            Assert.That(await CountRowsAsync(), Is.EqualTo(1));
        });
    }

    /// <summary>A renewal with a stale version conflicts, one of a deleted session is not found; neither creates a row.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task Renew_WithAStaleVersion_Conflicts_AndOfADeletedRow_IsNotFound_WritingNothing()
    {
        var store = await MigratedStoreAsync();
        var key = NewKey();
        await store.CreateAsync(Row(key));
        await store.UpdateAsync(key, [2], 1);

        var stale = await store.RenewAsync(key, 1, Row(NewKey()));
        await store.DeleteAsync(key);
        var gone = await store.RenewAsync(key, 2, Row(NewKey()));

        Assert.Multiple(async () =>
        {
            Assert.That(stale.Status, Is.EqualTo(SessionUpdateStatus.Conflict));
            Assert.That(gone.Status, Is.EqualTo(SessionUpdateStatus.NotFound));
            Assert.That(await CountRowsAsync(), Is.Zero, "neither renewal created a row");
        });
    }

    /// <summary>Concurrent renewals of one session from several stores: one commits and one row remains, under the winner's key.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task Renewals_OfOneSessionFromSeveralStoresAtOnce_AtMostOneCommits_AndOneRowRemains()
    {
        var store = await MigratedStoreAsync();
        var key = NewKey();
        await store.CreateAsync(Row(key));
        var stores = Enumerable.Range(0, 6).Select(_ => NewStore()).ToList();
        var newKeys = stores.Select(_ => NewKey()).ToList();

        var results = await Task.WhenAll(stores.Select((s, i) => Task.Run(() => s.RenewAsync(key, 1, Row(newKeys[i])))));

        Assert.Multiple(async () =>
        {
            Assert.That(results.Count(r => r.Status == SessionUpdateStatus.Committed), Is.EqualTo(1));
            Assert.That(await CountRowsAsync(), Is.EqualTo(1), "one session, under one key");
            var winner = Array.FindIndex(results, r => r.Status == SessionUpdateStatus.Committed);
            Assert.That(await store.LoadAsync(newKeys[winner]), Is.Not.Null);
        });
    }

    // ---- users ----

    /// <summary>Listing a user's sessions gives the live ones, most recent first, with their device info; deleting a user's sessions spares the excepted key.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task ListByUser_GivesLiveSessionsMostRecentFirst_AndDeleteByUser_KeepsTheExceptedOne()
    {
        var store = await MigratedStoreAsync();
        var older = NewKey();
        var newer = NewKey();
        var expired = NewKey();
        await store.CreateAsync(Row(expired, user: "alice"));
        _time.Advance(TimeSpan.FromMinutes(15));
        await store.CreateAsync(new NewSession(older, [1], "alice", "10.0.0.1", "agent 1"));
        _time.Advance(TimeSpan.FromMinutes(6));
        await store.CreateAsync(new NewSession(newer, [1], "alice", null, null));
        await store.CreateAsync(Row(NewKey(), user: "bob"));

        var list = await store.ListByUserAsync("alice", limit: 10);
        var capped = await store.ListByUserAsync("alice", limit: 1);
        var deleted = await store.DeleteByUserAsync("alice", exceptKey: newer, maxRows: 10);
        var deletedAll = await store.DeleteByUserAsync("bob", exceptKey: null, maxRows: 10);
        var none = await store.DeleteByUserAsync("alice", exceptKey: newer, maxRows: 10);

        Assert.Multiple(async () =>
        {
            Assert.That(list.Select(s => s.Id), Is.EqualTo(new[] { Convert.ToHexStringLower(newer), Convert.ToHexStringLower(older) }), "expired one left out");
            Assert.That(list[1].IpAddress, Is.EqualTo("10.0.0.1"));
            Assert.That(list[1].UserAgent, Is.EqualTo("agent 1"));
            Assert.That(list[1].CreatedAt, Is.EqualTo(_time.GetUtcNow() - TimeSpan.FromMinutes(6)));
            Assert.That(capped.Select(s => s.Id), Is.EqualTo(new[] { Convert.ToHexStringLower(newer) }), "limit: the most recently used");
            Assert.That(deleted.Select(r => Convert.ToHexStringLower(r.Key)), Is.EquivalentTo(new[] { Convert.ToHexStringLower(older), Convert.ToHexStringLower(expired) }), "the expired row goes too");
            Assert.That(deleted.Select(r => r.UserId), Is.All.EqualTo("alice"));
            Assert.That(deleted.Single(r => r.Key.SequenceEqual(expired)).ExpiresAt, Is.LessThan(_time.GetUtcNow()), "each row comes with its expiry");
            Assert.That(deletedAll, Has.Count.EqualTo(1));
            Assert.That(none, Is.Empty);
            Assert.That(await store.LoadAsync(newer), Is.Not.Null);
            Assert.That(await CountRowsAsync(), Is.EqualTo(1));
        });
    }

    /// <summary>Deleting a user's sessions in batches deletes at most the batch size a call, until none is left.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task DeleteByUser_DeletesAtMostMaxRowsACall_UntilNoneIsLeft()
    {
        var store = await MigratedStoreAsync();
        for (var i = 0; i < 25; i++)
        {
            await store.CreateAsync(Row(NewKey(), user: "carol"));
        }

        var other = NewKey();
        await store.CreateAsync(Row(other, user: "dave"));

        var batches = new List<int>();
        var keys = new HashSet<string>();
        while (true)
        {
            var batch = await store.DeleteByUserAsync("carol", exceptKey: null, maxRows: 10);
            if (batch.Count == 0)
            {
                break;
            }

            batches.Add(batch.Count);
            keys.UnionWith(batch.Select(r => Convert.ToHexStringLower(r.Key)));
        }

        Assert.Multiple(async () =>
        {
            Assert.That(batches, Is.EqualTo(new[] { 10, 10, 5 }));
            Assert.That(keys, Has.Count.EqualTo(25));
            Assert.That(await CountRowsAsync(), Is.EqualTo(1));
            Assert.That(await store.LoadAsync(other), Is.Not.Null);
        });
    }

    /// <summary>Deleting a session returns its key, user and lifetime, whether it was live or expired; <see langword="null"/> when there was none.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task Delete_ReturnsTheRowWithItsUserAndLifetime_AndNullWhenThereIsNone()
    {
        var store = await MigratedStoreAsync();
        var live = NewKey();
        var expired = NewKey();
        await store.CreateAsync(Row(expired, user: "erin"));
        var created = _time.GetUtcNow();
        _time.Advance(TimeSpan.FromMinutes(21));
        await store.CreateAsync(Row(live));

        var deletedExpired = await store.DeleteAsync(expired);
        var deletedLive = await store.DeleteAsync(live);
        var again = await store.DeleteAsync(live);

        Assert.Multiple(async () =>
        {
            Assert.That(deletedExpired, Is.Not.Null);
            Assert.That(deletedExpired!.Key, Is.EqualTo(expired));
            Assert.That(deletedExpired.UserId, Is.EqualTo("erin"));
            Assert.That(deletedExpired.CreatedAt, Is.EqualTo(created));
            Assert.That(deletedExpired.ExpiresAt, Is.EqualTo(created + TimeSpan.FromMinutes(20)));
            Assert.That(deletedLive?.UserId, Is.Null);
            Assert.That(deletedLive?.ExpiresAt, Is.EqualTo(_time.GetUtcNow() + TimeSpan.FromMinutes(20)));
            Assert.That(again, Is.Null);
            Assert.That(await CountRowsAsync(), Is.Zero);
        });
    }

    // ---- queries (admin pages, the command-line tool) ----

    /// <summary>
    /// A query pages through the live sessions newest first (creation time, then key, descending) by keyset: pages
    /// follow each other without repeats or gaps, also across ties in creation time and while rows are added and removed.
    /// </summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task Query_PagesNewestFirstByKeyset_WithoutRepeatsOrGaps_WhileRowsChange()
    {
        var store = await MigratedStoreAsync();
        await store.CreateAsync(Row(NewKey()));
        _time.Advance(TimeSpan.FromMinutes(21)); // the first one is expired now
        var created = new List<(long CreatedAt, byte[] Key)>();
        for (var i = 0; i < 8; i++)
        {
            var key = NewKey();
            await store.CreateAsync(Row(key));
            created.Add((_time.GetUtcNow().ToUnixTimeSeconds(), key));
            if (i % 3 == 2)
            {
                _time.Advance(TimeSpan.FromSeconds(1)); // three sessions share each second: ties ordered by key
            }
        }

        var expected = created
            .OrderByDescending(c => c.CreatedAt).ThenByDescending(c => Convert.ToHexStringLower(c.Key), StringComparer.Ordinal)
            .Select(c => Convert.ToHexStringLower(c.Key)).ToList();
        var seen = new List<string>();
        SessionCursor? after = null;
        var pages = 0;
        while (true)
        {
            var page = await store.QueryAsync(SessionFilter.All, after, limit: 3);
            pages++;
            seen.AddRange(page.Select(s => s.Id));
            if (page.Count < 3)
            {
                break;
            }

            if (pages == 1)
            {
                // Between pages: a new session (newer than the cursor, so not in later pages) and the loss of one not seen yet.
                await store.CreateAsync(Row(NewKey()));
                await store.DeleteAsync(Convert.FromHexString(expected[^1]));
            }

            var last = page[^1];
            after = new SessionCursor(last.CreatedAt.ToUnixTimeSeconds(), Convert.FromHexString(last.Id));
        }

        Assert.Multiple(() =>
        {
            Assert.That(seen, Is.EqualTo(expected.Take(expected.Count - 1)), "every live session once, newest first; the deleted one never shown");
            Assert.That(pages, Is.EqualTo(3));
        });
    }

    /// <summary>Each filter of a query (user, bound or anonymous, created and last used before or after) selects the same sessions in the query and the count; expired sessions never match.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task QueryAndCount_ApplyEveryFilter_AndLeaveOutExpiredSessions()
    {
        var store = await MigratedStoreAsync();
        await store.CreateAsync(Row(NewKey(), user: "alice"));
        _time.Advance(TimeSpan.FromMinutes(30)); // that one is expired now
        var start = _time.GetUtcNow();
        var alice1 = NewKey();
        var anonymous = NewKey();
        await store.CreateAsync(Row(alice1, user: "alice"));
        await store.CreateAsync(Row(anonymous));
        _time.Advance(TimeSpan.FromMinutes(5));
        var middle = _time.GetUtcNow();
        _time.Advance(TimeSpan.FromMinutes(5));
        var alice2 = NewKey();
        var bob = NewKey();
        await store.CreateAsync(Row(alice2, user: "alice"));
        await store.CreateAsync(Row(bob, user: "bob"));
        await store.TouchAsync(anonymous); // last used now, created at the start

        async Task<string[]> IdsAsync(SessionFilter filter)
        {
            var ids = (await store.QueryAsync(filter, null, 100)).Select(s => s.Id).Order(StringComparer.Ordinal).ToArray();
            Assert.That(await store.CountAsync(filter), Is.EqualTo(ids.Length), $"count of {filter}");
            return ids;
        }

        static string[] Ids(params byte[][] keys) => [.. keys.Select(Convert.ToHexStringLower).Order(StringComparer.Ordinal)];

        Assert.Multiple(async () =>
        {
            Assert.That(await IdsAsync(SessionFilter.All), Is.EqualTo(Ids(alice1, anonymous, alice2, bob)));
            Assert.That(await IdsAsync(new SessionFilter { UserId = "alice" }), Is.EqualTo(Ids(alice1, alice2)));
            Assert.That(await IdsAsync(new SessionFilter { IsBound = true }), Is.EqualTo(Ids(alice1, alice2, bob)));
            Assert.That(await IdsAsync(new SessionFilter { IsBound = false }), Is.EqualTo(Ids(anonymous)));
            Assert.That(await IdsAsync(new SessionFilter { CreatedAfter = middle }), Is.EqualTo(Ids(alice2, bob)));
            Assert.That(await IdsAsync(new SessionFilter { CreatedBefore = middle }), Is.EqualTo(Ids(alice1, anonymous)));
            Assert.That(await IdsAsync(new SessionFilter { LastAccessAfter = middle }), Is.EqualTo(Ids(anonymous, alice2, bob)));
            Assert.That(await IdsAsync(new SessionFilter { LastAccessBefore = middle }), Is.EqualTo(Ids(alice1)));
            Assert.That(await IdsAsync(new SessionFilter { UserId = "alice", CreatedBefore = middle, CreatedAfter = start.AddSeconds(-1) }), Is.EqualTo(Ids(alice1)));
            Assert.That(await IdsAsync(new SessionFilter { UserId = "nobody" }), Is.Empty);
        });
    }

    // ---- expired rows ----

    /// <summary>Listing expired rows pages them by expiry then key (keyset: nothing deleted between pages), with their user and lifetime, live rows left out; nothing is deleted.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task ListExpired_PagesExpiredRowsByExpiryThenKey_WithTheirUserAndLifetime_LeavingLiveOnesOut()
    {
        var store = await MigratedStoreAsync(o => o.AbsoluteTimeout = TimeSpan.FromMinutes(30));
        var firstCreated = _time.GetUtcNow();
        for (var i = 0; i < 25; i++)
        {
            await store.CreateAsync(Row(NewKey(), user: i % 2 == 0 ? "frank" : null));
            if (i % 10 == 9)
            {
                _time.Advance(TimeSpan.FromSeconds(1)); // ties in expiry: ordered by key
            }
        }

        _time.Advance(TimeSpan.FromMinutes(15));
        var live = await CreateManyAsync(store, 5);
        _time.Advance(TimeSpan.FromMinutes(10)); // the first 25 are 25 minutes idle, the last 5 only 10

        var pages = new List<IReadOnlyList<SessionLifetime>>();
        SessionLifetime? after = null;
        while (true)
        {
            // Nothing is deleted between the pages: the keyset moves on by itself.
            var page = await store.ListExpiredAsync(after, 10);
            pages.Add(page);
            if (page.Count < 10)
            {
                break;
            }

            after = page[^1];
        }

        var rows = pages.SelectMany(p => p).ToList();
        Assert.Multiple(async () =>
        {
            Assert.That(pages.Select(p => p.Count), Is.EqualTo(new[] { 10, 10, 5 }));
            Assert.That(rows.Select(r => Convert.ToHexStringLower(r.Key)).Distinct().Count(), Is.EqualTo(25));
            Assert.That(
                rows.Select(r => (r.ExpiresAt, Convert.ToHexStringLower(r.Key))),
                Is.EqualTo(rows.OrderBy(r => r.ExpiresAt).ThenBy(r => Convert.ToHexStringLower(r.Key), StringComparer.Ordinal).Select(r => (r.ExpiresAt, Convert.ToHexStringLower(r.Key)))),
                "by expiry, then key");
            Assert.That(rows.Count(r => r.UserId == "frank"), Is.EqualTo(13));
            Assert.That(rows[0].CreatedAt, Is.EqualTo(firstCreated));
            Assert.That(rows[0].ExpiresAt, Is.EqualTo(firstCreated + TimeSpan.FromMinutes(20)));
            Assert.That(await CountRowsAsync(), Is.EqualTo(30), "listing deletes nothing");
            Assert.That(rows.Select(r => r.Key), Has.None.AnyOf(live.ToArray()));
        });
    }

    /// <summary>Deleting expired rows by key deletes those still expired and returns them; a live key given is kept.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task DeleteExpired_DeletesTheGivenKeysStillExpired_AndKeepsRowsThatAreNot()
    {
        var store = await MigratedStoreAsync();
        var revived = NewKey();
        await store.CreateAsync(Row(revived, user: "revived"));
        var expired = await CreateManyAsync(store, 11);
        _time.Advance(TimeSpan.FromMinutes(15));
        var live = await CreateManyAsync(store, 3);
        _time.Advance(TimeSpan.FromMinutes(10));
        var listed = (await store.ListExpiredAsync(null, 100)).Select(r => r.Key).ToList();

        // A row listed as expired that another server (its clock behind) made live again meanwhile.
        await ExecuteAsync(string.Create(CultureInfo.InvariantCulture, $"UPDATE sessions SET expires_at = {_time.GetUtcNow().ToUnixTimeSeconds() + 600} WHERE user_id = 'revived'"));
        var deleted = await store.DeleteExpiredAsync([.. listed, live[0]]);
        var again = await store.DeleteExpiredAsync(listed);

        Assert.Multiple(async () =>
        {
            Assert.That(listed, Has.Count.EqualTo(12));
            Assert.That(deleted.Select(Convert.ToHexStringLower), Is.EquivalentTo(expired.Select(Convert.ToHexStringLower)));
            Assert.That(again, Is.Empty);
            Assert.That(await store.LoadAsync(revived), Is.Not.Null, "no longer expired: kept");
            Assert.That(await store.LoadAsync(live[0]), Is.Not.Null, "live: kept");
            Assert.That(await CountRowsAsync(), Is.EqualTo(4));
        });
    }

    /// <summary>
    /// Several stores cleaning at once (listing a batch, then deleting it) delete each expired row exactly once, without
    /// errors and without waiting on each other's rows.
    /// </summary>
    /// <returns>A task that completes when the test has run.</returns>
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
            SessionLifetime? after = null;
            while (true)
            {
                var batch = await c.ListExpiredAsync(after, 50);
                total += (await c.DeleteExpiredAsync([.. batch.Select(r => r.Key)])).Count;
                if (batch.Count < 50)
                {
                    break;
                }

                after = batch[^1];
            }

            return total;
        })));
        TestContext.Out.WriteLine($"{GetType().Name}: rows deleted by each of 3 concurrent cleaners: {string.Join(", ", counts)}");

        Assert.Multiple(async () =>
        {
            Assert.That(counts.Sum(), Is.EqualTo(1_500), "each expired row deleted exactly once");
            Assert.That(await CountRowsAsync(), Is.EqualTo(20));
            Assert.That(await store.LoadAsync(live[0]), Is.Not.Null);
        });
    }

    /// <summary>Using a store whose table does not exist throws an <see cref="InvalidOperationException"/> naming the table and <c>MigrateServerSideSessionsAsync</c>.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task MissingTable_GivesAClearErrorNamingTheTableAndTheMigrationCall()
    {
        var other = NewStore(o => o.TableName = "app_sessions");

        var ex = Assert.ThrowsAsync<InvalidOperationException>(() => other.LoadAsync(NewKey()));

        Assert.That(ex!.Message, Does.Contain("\"app_sessions\"").And.Contain("MigrateServerSideSessionsAsync"));
        await Task.CompletedTask;
    }

    // ---- migration ----

    /// <summary>Migrating an empty database creates the table, its three indexes and the schema version row.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task Migrate_OnAnEmptyDatabase_CreatesTheTableIndexesAndSchemaVersion()
    {
        await NewStore().MigrateAsync();

        var objects = await ListObjectsAsync();
        Assert.Multiple(async () =>
        {
            Assert.That(objects, Is.SupersetOf(new[]
            {
                "table:sessions", "table:" + SchemaVersionTable,
                "index:ix_sessions_expires_at", "index:ix_sessions_created_at", "index:ix_sessions_user_id",
            }));
            Assert.That(await QueryAsync($"SELECT table_name || '=' || version FROM {SchemaVersionTable}"), Is.EqualTo(new[] { $"sessions={SchemaVersion}" }));
        });
    }

    /// <summary>Migrating a migrated database changes no definition and keeps the data.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task Migrate_Twice_ChangesNothing_AndKeepsTheData()
    {
        var store = await MigratedStoreAsync();
        var key = NewKey();
        await store.CreateAsync(Row(key, [42]));
        var schemaBefore = await DumpSchemaAsync();

        _time.Advance(TimeSpan.FromMinutes(1));
        await NewStore().MigrateAsync();

        Assert.Multiple(async () =>
        {
            Assert.That(await DumpSchemaAsync(), Is.EqualTo(schemaBefore));
            Assert.That((await store.LoadAsync(key))!.Data, Is.EqualTo(new byte[] { 42 }));
        });
    }

    /// <summary>Several stores migrating one database at once all succeed, creating one table.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task Migrate_FromSeveralStoresAtOnce_AllSucceed()
    {
        var stores = Enumerable.Range(0, 6).Select(_ => NewStore()).ToList();

        await Task.WhenAll(stores.Select(s => Task.Run(() => s.MigrateAsync())));

        Assert.That((await ListObjectsAsync()).Count(o => o == "table:sessions"), Is.EqualTo(1));
    }

    /// <summary>Migrating over a table of another shape throws a <see cref="SessionStoreSchemaException"/> naming the table, the expected and the found columns, and changes neither schema nor data.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task Migrate_AgainstATableOfAnotherShape_ThrowsNamingTableAndColumns_AndLeavesItUntouched()
    {
        await ExecuteAsync($"CREATE TABLE sessions (id {TextType} PRIMARY KEY, value {TextType}, expires {IntegerType}); INSERT INTO sessions VALUES ('x', 'user data', 1);");
        var before = await DumpSchemaAsync();

        var ex = Assert.ThrowsAsync<SessionStoreSchemaException>(() => NewStore().MigrateAsync());

        Assert.Multiple(async () =>
        {
            Assert.That(ex!.TableName, Is.EqualTo("sessions"));
            Assert.That(ex.Message, Does.Contain("\"sessions\""));
            Assert.That(ex.Message, Does.Contain($"id {BlobType}").And.Contain($"last_access {IntegerType}"), "expected columns");
            Assert.That(ex.Message, Does.Contain($"id {TextType}").And.Contain($"expires {IntegerType}"), "found columns");
            Assert.That(ex.FoundColumns, Is.EqualTo(new[] { $"id {TextType} PRIMARY KEY", $"value {TextType}", $"expires {IntegerType}" }));
            Assert.That(await DumpSchemaAsync(), Is.EqualTo(before), "schema untouched");
            Assert.That(await QueryAsync("SELECT value FROM sessions"), Is.EqualTo(new[] { "user data" }), "data untouched");
        });
    }

    /// <summary>Migrating over a table with the right columns but no primary key on <c>id</c> throws a <see cref="SessionStoreSchemaException"/>.</summary>
    [Test]
    public void Migrate_AgainstSameColumnsWithoutThePrimaryKey_Throws()
    {
        string b = BlobType, t = TextType, i = IntegerType;
        Assert.That(
            () => ExecuteAsync($"CREATE TABLE sessions (id {b}, user_id {t}, data {b}, created_at {i}, last_access {i}, version {i}, ip {t}, user_agent {t});"),
            Throws.Nothing);

        var ex = Assert.ThrowsAsync<SessionStoreSchemaException>(() => NewStore().MigrateAsync());

        Assert.That(ex!.Message, Does.Contain($"id {b} PRIMARY KEY"));
    }

    /// <summary>Migrating a database whose schema version is newer than the store knows throws a <see cref="SessionStoreSchemaException"/>.</summary>
    [Test]
    public void Migrate_AgainstANewerSchemaVersion_Throws()
    {
        Assert.That(
            () => ExecuteAsync($"CREATE TABLE {SchemaVersionTable} (table_name TEXT NOT NULL PRIMARY KEY, version INTEGER NOT NULL, migrated_at INTEGER NOT NULL); INSERT INTO {SchemaVersionTable} VALUES ('sessions', 99, 0);"),
            Throws.Nothing);

        var ex = Assert.ThrowsAsync<SessionStoreSchemaException>(() => NewStore().MigrateAsync());

        Assert.That(ex!.Message, Does.Contain("99").And.Contain("newer"));
    }

    /// <summary>
    /// <see cref="IServerSideSessionStore.CheckSchemaAsync"/> on a database never migrated throws an
    /// <see cref="InvalidOperationException"/> naming the table and <c>MigrateServerSideSessionsAsync</c>, and creates nothing.
    /// </summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task CheckSchema_BeforeMigrating_ThrowsNamingTheTableAndTheMigrationCall_AndCreatesNothing()
    {
        var ex = Assert.ThrowsAsync<InvalidOperationException>(() => NewStore(o => o.TableName = "app_sessions").CheckSchemaAsync());

        Assert.That(ex!.Message, Does.Contain("\"app_sessions\"").And.Contain("MigrateServerSideSessionsAsync"));
        Assert.That(await ListObjectsAsync(), Has.None.Contains("app_sessions").And.None.Contains(SchemaVersionTable));
    }

    /// <summary><see cref="IServerSideSessionStore.CheckSchemaAsync"/> after a migration, from another store, passes and changes nothing.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task CheckSchema_AfterMigrating_Passes_AndChangesNothing()
    {
        await NewStore().MigrateAsync();
        var before = await DumpSchemaAsync();

        await NewStore().CheckSchemaAsync();

        Assert.That(await DumpSchemaAsync(), Is.EqualTo(before));
    }

    /// <summary><see cref="IServerSideSessionStore.CheckSchemaAsync"/> against a table of another shape throws a <see cref="SessionStoreSchemaException"/> naming the found columns.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task CheckSchema_AgainstATableOfAnotherShape_Throws()
    {
        await ExecuteAsync($"CREATE TABLE sessions (id {TextType} PRIMARY KEY, value {TextType});");

        var ex = Assert.ThrowsAsync<SessionStoreSchemaException>(() => NewStore().CheckSchemaAsync());

        Assert.That(ex!.Message, Does.Contain("\"sessions\"").And.Contain($"value {TextType}"));
    }

    /// <summary><see cref="IServerSideSessionStore.CheckSchemaAsync"/> against a table recorded at a newer schema version throws a <see cref="SessionStoreSchemaException"/>.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task CheckSchema_AgainstANewerSchemaVersion_Throws()
    {
        await NewStore().MigrateAsync();
        await ExecuteAsync($"UPDATE {SchemaVersionTable} SET version = 99;");

        var ex = Assert.ThrowsAsync<SessionStoreSchemaException>(() => NewStore().CheckSchemaAsync());

        Assert.That(ex!.Message, Does.Contain("99").And.Contain("newer"));
    }

    /// <summary>A store with a custom <see cref="ServerSideSessionOptions.TableName"/> creates and uses that table only.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task Migrate_WithACustomTableName_UsesIt()
    {
        var store = await MigratedStoreAsync(o => o.TableName = "App_Sessions_2");
        var key = NewKey();
        await store.CreateAsync(Row(key));

        Assert.Multiple(async () =>
        {
            Assert.That(await ListObjectsAsync(), Does.Contain("table:App_Sessions_2").And.Not.Contain("table:sessions"));
            Assert.That(await CountRowsAsync("App_Sessions_2"), Is.EqualTo(1));
        });
    }

    /// <summary>The longest allowed table name (63 characters) gets five distinct index names, within the database's identifier limit, and migrates twice.</summary>
    /// <returns>A task that completes when the test has run.</returns>
    [Test]
    public async Task Migrate_WithTheLongestAllowedTableName_CreatesFiveDistinctIndexes_AndIsIdempotent()
    {
        var name = "s" + new string('x', 62);
        await MigratedStoreAsync(o => o.TableName = name);
        await MigratedStoreAsync(o => o.TableName = name);

        var indexes = (await ListObjectsAsync()).Where(o => o.StartsWith("index:ix_", StringComparison.Ordinal)).ToList();

        Assert.That(indexes, Has.Count.EqualTo(5), "one index each on expires_at, created_at, user_id, (idp_issuer, idp_sid), (idp_issuer, idp_subject)");
        if (MaxIdentifierLength is { } max)
        {
            Assert.That(indexes, Has.All.Length.LessThanOrEqualTo("index:".Length + max), $"the database keeps {max} characters of a name");
        }
    }
}
