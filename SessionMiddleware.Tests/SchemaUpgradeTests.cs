using System.Text;
using Dapper;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Cleanup;
using SessionMiddleware.Cookies;
using SessionMiddleware.Events;
using SessionMiddleware.Ids;
using SessionMiddleware.Storage;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// Schema 1 -> 2 (every row gets its own <c>expires_at</c>) on a table made by the library at schema version 1
/// (Fixtures/sessions-v1.*): every row kept and readable, idempotent, and safe from two processes at once; and a
/// rolling upgrade, where servers of schema 1 still write to the migrated table with their own statements
/// (<see cref="Schema1"/>) while upgraded ones read it and clean it.
/// </summary>
[LaneFixture(StoreBackend.Sqlite)]
[LaneFixture(StoreBackend.Postgres)]
public sealed class SchemaUpgradeTests(string kind) : TempFolderTest
{
    // The fixture's three rows were created and last used at 2026-01-01 12:00 UTC, idle timeout 20 minutes.
    private static readonly DateTimeOffset FixtureTime = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

    private StoreBackend _db = null!;

    [SetUp]
    public async Task SetUp()
    {
        _db = await StoreBackend.CreateAsync(kind);
        await _db.LoadSchema1FixtureAsync();
    }

    [TearDown]
    public async Task TearDown() => await _db.DisposeAsync();

    [Test]
    public async Task Migrate_OfASchema1Table_AddsExpiresAt_KeepsEveryRowReadable_AndASecondRunChangesNothing()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(FixtureTime.AddMinutes(5));
        var store = _db.CreateStore(time, o => o.IdleTimeout = TimeSpan.FromMinutes(20));

        await store.MigrateAsync();
        var schemaAfterFirst = await _db.DumpSchemaAsync();
        await _db.CreateStore(time, o => o.IdleTimeout = TimeSpan.FromMinutes(20)).MigrateAsync();

        Assert.Multiple(async () =>
        {
            Assert.That(await _db.QueryAsync("SELECT version FROM __session_middleware_schema WHERE table_name = 'sessions'"), Is.EqualTo(new[] { "4" }));
            Assert.That(await _db.DumpSchemaAsync(), Is.EqualTo(schemaAfterFirst), "the second migration changes nothing");
            Assert.That(await _db.ListObjectsAsync(), Does.Contain("index:ix_sessions_expires_at"));
            Assert.That(
                await _db.QueryAsync("SELECT expires_at - last_access FROM sessions"),
                Is.EqualTo(new[] { "1200", "1200", "1200" }),
                "each row expires IdleTimeout after its last access");
            await AssertFixtureRowsReadableAsync(store);
        });

        // Upgraded rows expire by their new column like any other.
        time.Advance(TimeSpan.FromMinutes(16));
        Assert.That(await store.LoadAsync(FixtureKey(1)), Is.Null, "past 12:20 the fixture's rows are expired");
    }

    [Test]
    public async Task Migrate_OfASchema2Table_RecordsSchema4_KeepsEveryRow_AndOnSqliteAddsTheChangesTable()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(FixtureTime.AddMinutes(5));
        await _db.CreateStore(time, o => o.IdleTimeout = TimeSpan.FromMinutes(20)).MigrateAsync();

        // The table as schema 2 left it: no changes table, no sign-in columns, version 2 recorded.
        if (kind == StoreBackend.Sqlite)
        {
            await _db.ExecuteAsync("DROP TABLE sessions_changes;");
        }

        await DropSignInColumnsAsync();

        await _db.ExecuteAsync("UPDATE __session_middleware_schema SET version = 2 WHERE table_name = 'sessions';");
        var store = _db.CreateStore(time, o => o.IdleTimeout = TimeSpan.FromMinutes(20));
        Assert.That(async () => await store.CheckSchemaAsync(), Throws.InstanceOf<SessionStoreSchemaException>(), "schema 2 is not this version's: migrate first");

        await store.MigrateAsync();

        Assert.Multiple(async () =>
        {
            Assert.That(await _db.QueryAsync("SELECT version FROM __session_middleware_schema WHERE table_name = 'sessions'"), Is.EqualTo(new[] { "4" }));
            Assert.That(await _db.ListObjectsAsync(), kind == StoreBackend.Sqlite ? Does.Contain("table:sessions_changes") : Does.Not.Contain("table:sessions_changes"));
            Assert.That(await _db.CountRowsAsync(), Is.EqualTo(3), "every row kept");
            await AssertFixtureRowsReadableAsync(store);
            Assert.That(async () => await store.CheckSchemaAsync(), Throws.Nothing);
        });
    }

    /// <summary>
    /// Schema 3 -> 4: the sign-in columns and their indexes are added, every row is kept and readable (recording no sign-in),
    /// and a sign-in written afterwards is recorded.
    /// </summary>
    [Test]
    public async Task Migrate_OfASchema3Table_AddsTheSignInColumns_KeepsEveryRow()
    {
        var time = new FakeTimeProvider(FixtureTime.AddMinutes(5));
        await _db.CreateStore(time, o => o.IdleTimeout = TimeSpan.FromMinutes(20)).MigrateAsync();
        await DropSignInColumnsAsync();
        await _db.ExecuteAsync("UPDATE __session_middleware_schema SET version = 3 WHERE table_name = 'sessions';");
        var store = _db.CreateStore(time, o => o.IdleTimeout = TimeSpan.FromMinutes(20));
        Assert.That(async () => await store.CheckSchemaAsync(), Throws.InstanceOf<SessionStoreSchemaException>(), "schema 3 is not this version's: migrate first");

        await store.MigrateAsync();
        var signedIn = SessionIds.ComputeKey(Encoding.UTF8.GetBytes("signed-in-after-the-upgrade"));
        var signIn = new SessionSignIn(FixtureTime.AddMinutes(5), "https://idp.example", "sid", "sub", "stamp");
        await store.CreateAsync(new NewSession(signedIn, [1], "carol", null, null) { SignIn = signIn });

        Assert.Multiple(async () =>
        {
            Assert.That(await _db.QueryAsync("SELECT version FROM __session_middleware_schema WHERE table_name = 'sessions'"), Is.EqualTo(new[] { "4" }));
            Assert.That(await _db.ListObjectsAsync(), Does.Contain("index:ix_sessions_idp_sid").And.Contain("index:ix_sessions_idp_subject"));
            Assert.That(await _db.CountRowsAsync(), Is.EqualTo(4), "every row kept");
            await AssertFixtureRowsReadableAsync(store);
            Assert.That((await store.LoadAsync(FixtureKey(1)))!.SignIn, Is.Null, "an upgraded row records no sign-in");
            Assert.That((await store.LoadAsync(signedIn))!.SignIn, Is.EqualTo(signIn));
            Assert.That(async () => await store.CheckSchemaAsync(), Throws.Nothing);
        });
    }

    // Back to the columns of schema 2 and 3 (SQLite drops a column only once no index uses it).
    private async Task DropSignInColumnsAsync()
    {
        await _db.ExecuteAsync("DROP INDEX ix_sessions_idp_sid; DROP INDEX ix_sessions_idp_subject;");
        foreach (var column in SessionTableSchema.SignInColumnNames)
        {
            await _db.ExecuteAsync($"ALTER TABLE sessions DROP COLUMN {column};");
        }
    }

    [Test, InLane(TestLane.Functional)]
    public async Task Migrate_OfASchema1Table_FromTwoProcessesStartingAtOnce_BothStart_AndEveryRowIsKept()
    {
        var hosts = await Task.WhenAll(
            _db.StartChildHostAsync(Path.Combine(Folder.Path, "a")),
            _db.StartChildHostAsync(Path.Combine(Folder.Path, "b")));
        foreach (var host in hosts)
        {
            await host.DisposeAsync();
        }

        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(FixtureTime.AddMinutes(5));
        var store = _db.CreateStore(time, o => o.IdleTimeout = TimeSpan.FromMinutes(20));
        Assert.Multiple(async () =>
        {
            Assert.That(await _db.QueryAsync("SELECT version FROM __session_middleware_schema WHERE table_name = 'sessions'"), Is.EqualTo(new[] { "4" }));
            Assert.That(await _db.CountRowsAsync(), Is.EqualTo(3));
            await AssertFixtureRowsReadableAsync(store);
        });
    }

    [Test]
    public async Task RollingUpgrade_ARowASchema1ServerInsertsAfterTheMigration_IsLive_TheCleanerKeepsIt_AndNoSessionEnds()
    {
        var time = new FakeTimeProvider(FixtureTime.AddMinutes(5));
        var store = _db.CreateStore(time, o => o.IdleTimeout = TimeSpan.FromMinutes(20));
        await store.MigrateAsync();
        var key = SessionIds.ComputeKey(Encoding.UTF8.GetBytes("inserted-by-schema-1"));
        var renewedKey = SessionIds.ComputeKey(Encoding.UTF8.GetBytes("renewed-by-schema-1"));

        await using (var connection = await _db.OpenConnectionAsync())
        {
            var now = time.GetUtcNow().ToUnixTimeSeconds();
            await connection.ExecuteAsync(Schema1.Insert, new { Id = key, UserId = "bob", Data = new byte[] { 1, 2, 3 }, Now = now, Ip = "127.0.0.1", UserAgent = "schema 1" });
            await connection.QuerySingleAsync<long>(Schema1.Renew(_db.Kind), new
            {
                OldId = FixtureKey(1), ExpectedVersion = 1L, NewId = renewedKey, UserId = "alice", Data = new byte[] { 4 },
                Ip = "127.0.0.1", UserAgent = "schema 1", Now = now, IdleCutoff = now - 1200, AbsoluteCutoff = long.MinValue,
            });
            if (_db.Kind == StoreBackend.Sqlite)
            {
                await connection.ExecuteAsync(Schema1.Delete, new { Id = FixtureKey(1) });
            }
        }

        time.Advance(TimeSpan.FromMinutes(19));
        var ended = new List<SessionEndedContext>();
        var deleted = await Cleaner(time, ended).RunOnceAsync(CancellationToken.None);

        Assert.Multiple(async () =>
        {
            Assert.That(await store.LoadAsync(key), Is.Not.Null, "the row a schema-1 server inserted, 19 minutes later");
            Assert.That(await store.LoadAsync(renewedKey), Is.Not.Null, "the row a schema-1 server renewed, 19 minutes later");
            Assert.That(ended.Select(e => e.SessionId), Is.EquivalentTo(new[] { 2, 3 }.Select(i => PublicId(FixtureKey(i)))), "only the fixture's idle rows end");
            Assert.That(deleted, Is.EqualTo(2));
        });

        // They expire IdleTimeout after the schema-1 write, as any other row.
        time.Advance(TimeSpan.FromMinutes(2));
        Assert.That(await store.LoadAsync(key), Is.Null);
    }

    [Test]
    public async Task RollingUpgrade_ASchema1ServerTouchingOrWritingAMigratedRow_KeepsItLive_AndTheCleanerEndsOnlyTheIdleOne()
    {
        var time = new FakeTimeProvider(FixtureTime.AddMinutes(5));
        var store = _db.CreateStore(time, o => o.IdleTimeout = TimeSpan.FromMinutes(20));
        await store.MigrateAsync();

        // At 12:15 a schema-1 server touches fixture session 1 and writes session 2; session 3 stays idle since 12:00.
        time.Advance(TimeSpan.FromMinutes(10));
        await using (var connection = await _db.OpenConnectionAsync())
        {
            var now = time.GetUtcNow().ToUnixTimeSeconds();
            var cutoffs = new { Now = now, IdleCutoff = now - 1200, AbsoluteCutoff = long.MinValue };
            Assert.That(await connection.ExecuteAsync(Schema1.Touch, new { Id = FixtureKey(1), cutoffs.Now, cutoffs.IdleCutoff, cutoffs.AbsoluteCutoff }), Is.EqualTo(1));
            Assert.That(
                await connection.QuerySingleAsync<long>(Schema1.Update, new { Id = FixtureKey(2), Data = Encoding.UTF8.GetBytes("written by schema 1"), ExpectedVersion = 1L, cutoffs.Now, cutoffs.IdleCutoff, cutoffs.AbsoluteCutoff }),
                Is.EqualTo(2));
        }

        // 12:25: past the migrated rows' expiry (12:20), within the schema-1 writes' (12:35).
        time.Advance(TimeSpan.FromMinutes(10));
        var ended = new List<SessionEndedContext>();
        var deleted = await Cleaner(time, ended).RunOnceAsync(CancellationToken.None);

        Assert.Multiple(async () =>
        {
            Assert.That(await store.LoadAsync(FixtureKey(1)), Is.Not.Null, "touched by a schema-1 server");
            Assert.That((await store.LoadAsync(FixtureKey(2)))?.Data, Is.EqualTo(Encoding.UTF8.GetBytes("written by schema 1")), "written by a schema-1 server");
            Assert.That(await store.LoadAsync(FixtureKey(3)), Is.Null, "idle since 12:00");
            Assert.That(ended.Select(e => e.SessionId), Is.EqualTo(new[] { PublicId(FixtureKey(3)) }));
            Assert.That(deleted, Is.EqualTo(1));
        });
    }

    [Test]
    public async Task RollingUpgrade_WritesOfThisVersion_AreLeftAsTheyAre_ARememberedExpiryIsNotShortened()
    {
        var time = new FakeTimeProvider(FixtureTime.AddMinutes(5));
        var store = _db.CreateStore(time, o => o.IdleTimeout = TimeSpan.FromMinutes(20));
        await store.MigrateAsync();
        var key = SessionIds.ComputeKey(Encoding.UTF8.GetBytes("remembered"));
        var remembered = time.GetUtcNow().AddDays(7);
        var created = await store.CreateAsync(new NewSession(key, [1], "carol", null, null, remembered));

        time.Advance(TimeSpan.FromMinutes(5));
        Assert.That(await store.TouchAsync(key, remembered), Is.True);
        time.Advance(TimeSpan.FromHours(1));
        Assert.That(await store.LoadAsync(key), Is.Not.Null, "an hour after a touch, within the remembered expiry");

        Assert.That((await store.UpdateAsync(key, [2], created.Version, remembered)).Status, Is.EqualTo(SessionUpdateStatus.Committed));
        time.Advance(TimeSpan.FromHours(1));
        Assert.That(await store.LoadAsync(key), Is.Not.Null, "an hour after a write, within the remembered expiry");
    }

    private static async Task AssertFixtureRowsReadableAsync(IServerSideSessionStore store)
    {
        for (var i = 1; i <= 3; i++)
        {
            var loaded = await store.LoadAsync(FixtureKey(i));
            Assert.That(loaded, Is.Not.Null, $"fixture session {i}");
            Assert.That(Encoding.UTF8.GetString(loaded!.Data), Does.EndWith($"cart\aitems-{i}"), $"fixture session {i}'s data");
            Assert.That(loaded.UserId, Is.EqualTo(i == 1 ? "alice" : null));
            Assert.That(loaded.CreatedAt, Is.EqualTo(FixtureTime));
        }
    }

    private static byte[] FixtureKey(int i) => SessionIds.ComputeKey(Encoding.UTF8.GetBytes($"fixture-secret-{i}"));

    private static string PublicId(byte[] key) => SessionIds.ToPublicId(key);

    private SessionCleanupService Cleaner(TimeProvider time, List<SessionEndedContext> ended)
    {
        var options = new ServerSideSessionOptions { IdleTimeout = TimeSpan.FromMinutes(20) };
        options.Events.OnEnded = c =>
        {
            ended.Add(c);
            return Task.CompletedTask;
        };
        return new SessionCleanupService(
            _db.CreateStore(time, o => o.IdleTimeout = options.IdleTimeout), time, Options.Create(options), NullLogger<SessionCleanupService>.Instance,
            events: new SessionEvents(options.Events, options.AbsoluteTimeout, time, NullLogger<SessionEvents>.Instance));
    }

    /// <summary>
    /// The statements a server of schema version 1 (SessionMiddleware before schema 2, commit a220076^) runs, verbatim,
    /// for the table "sessions": they know no expires_at.
    /// </summary>
    private static class Schema1
    {
        private const string Live = "last_access >= @IdleCutoff AND created_at >= @AbsoluteCutoff";
        private const string T = "\"sessions\"";

        public const string Insert =
            $"INSERT INTO {T} (id, user_id, data, created_at, last_access, version, ip, user_agent) VALUES (@Id, @UserId, @Data, @Now, @Now, 1, @Ip, @UserAgent);";

        public const string Update =
            $"UPDATE {T} SET data = @Data, version = version + 1, last_access = @Now WHERE id = @Id AND version = @ExpectedVersion AND {Live} RETURNING version;";

        public const string Touch =
            $"UPDATE {T} SET last_access = @Now WHERE id = @Id AND {Live};";

        public const string Delete = $"DELETE FROM {T} WHERE id = @Id;";

        // SQLite ran it in one transaction with Delete of the old key.
        private const string SqliteRenewInsert =
            $"INSERT INTO {T} (id, user_id, data, created_at, last_access, version, ip, user_agent) " +
            "SELECT @NewId, @UserId, @Data, created_at, @Now, version + 1, @Ip, @UserAgent " +
            $"FROM {T} WHERE id = @OldId AND version = @ExpectedVersion AND {Live} RETURNING version;";

        private const string PostgreSqlRenew =
            $"WITH old AS (DELETE FROM {T} WHERE id = @OldId AND version = @ExpectedVersion AND {Live} RETURNING created_at, version) " +
            $"INSERT INTO {T} (id, user_id, data, created_at, last_access, version, ip, user_agent) " +
            "SELECT @NewId, @UserId, @Data, old.created_at, @Now, old.version + 1, @Ip, @UserAgent FROM old RETURNING version;";

        public static string Renew(string kind) => kind == StoreBackend.Sqlite ? SqliteRenewInsert : PostgreSqlRenew;
    }

}
