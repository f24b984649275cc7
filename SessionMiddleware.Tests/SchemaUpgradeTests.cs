using System.Text;
using SessionMiddleware.Cookies;
using SessionMiddleware.Storage;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// Schema 1 -> 2 (every row gets its own <c>expires_at</c>) on a table made by the library at schema version 1
/// (Fixtures/sessions-v1.*): every row kept and readable, idempotent, and safe from two processes at once.
/// </summary>
[TestFixture(StoreBackend.Sqlite)]
[TestFixture(StoreBackend.Postgres)]
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
            Assert.That(await _db.QueryAsync("SELECT version FROM __session_middleware_schema WHERE table_name = 'sessions'"), Is.EqualTo(new[] { "2" }));
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
            Assert.That(await _db.QueryAsync("SELECT version FROM __session_middleware_schema WHERE table_name = 'sessions'"), Is.EqualTo(new[] { "2" }));
            Assert.That(await _db.CountRowsAsync(), Is.EqualTo(3));
            await AssertFixtureRowsReadableAsync(store);
        });
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

    private static byte[] FixtureKey(int i) => SessionIdProtector.ComputeKey(Encoding.UTF8.GetBytes($"fixture-secret-{i}"));
}
