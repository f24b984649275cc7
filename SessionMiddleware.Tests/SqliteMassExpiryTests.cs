using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Cleanup;
using SessionMiddleware.Events;
using SessionMiddleware.Storage.Sqlite;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// The SQLite store's cleaner listing in a mass expiry: when many rows expired and they are an eighth of the table or
/// more, a cleanup run lists them by key (their pages one after the other); otherwise by expiry, as the store contract
/// says. Either way a run deletes every expired row and no live one.
/// </summary>
public sealed class SqliteMassExpiryTests : TempFolderTest
{
    private static readonly Comparer<byte[]> ByKey = Comparer<byte[]>.Create((x, y) => x.AsSpan().SequenceCompareTo(y));
    private FakeTimeProvider _time = null!;
    private DateTimeOffset _filledAt;

    [SetUp]
    public void SetUp() => _time = StoreFactory.NewTime();

    private SqliteSessionStore Store(int massExpiryMinRows) => new(
        SqliteStoreSettings.From(new ServerSideSessionOptions { ConnectionString = $"Data Source={Folder.File("mass.db")}" }) with { MassExpiryMinRows = massExpiryMinRows },
        _time, NullLogger<SqliteSessionStore>.Instance, SqliteSessionStore.DefaultCheckpointInterval);

    /// <summary>Rows expiring one second apart, in an order unrelated to their keys; then <paramref name="live"/> rows that stay.</summary>
    private async Task<(List<byte[]> Expired, List<byte[]> Live)> FillAsync(SqliteSessionStore store, int expired, int live)
    {
        await store.MigrateAsync();
        var now = _filledAt = _time.GetUtcNow();
        var dead = new List<byte[]>();
        for (var i = 0; i < expired; i++)
        {
            var key = StoreFactory.NewKey();
            await store.CreateAsync(new NewSession(key, [1], null, null, null, now.AddSeconds(10 + i)));
            dead.Add(key);
        }

        var kept = new List<byte[]>();
        for (var i = 0; i < live; i++)
        {
            var key = StoreFactory.NewKey();
            await store.CreateAsync(new NewSession(key, [1], null, null, null, now.AddHours(1)));
            kept.Add(key);
        }

        _time.Advance(TimeSpan.FromSeconds(10 + expired));
        return (dead, kept);
    }

    [Test]
    public async Task AMassExpiry_IsListedByKey_PageAfterPage()
    {
        await using var store = Store(massExpiryMinRows: 10);
        var (expired, _) = await FillAsync(store, expired: 30, live: 20);

        var first = await store.ListExpiredAsync(null, 12);
        var second = await store.ListExpiredAsync(first[^1], 12);
        var third = await store.ListExpiredAsync(second[^1], 12);

        var byKey = expired.OrderBy(k => k, ByKey).ToList();
        Assert.That(first.Concat(second).Concat(third).Select(r => r.Key), Is.EqualTo(byKey), "every expired row once, by key");
    }

    [Test]
    public async Task FewExpiredRows_OrAFewAmongMany_AreListedByExpiry()
    {
        // 30 expired of 300 rows (a tenth): not a mass expiry.
        await using var store = Store(massExpiryMinRows: 10);
        var (expired, _) = await FillAsync(store, expired: 30, live: 270);

        var listed = await store.ListExpiredAsync(null, 100);

        Assert.That(listed.Select(r => r.Key), Is.EqualTo(expired), "by expiry, the order they were given");
    }

    [TestCase(31)]
    [TestCase(0)]
    public async Task FewerExpiredRowsThanTheBound_OrABoundOfZero_AreListedByExpiry_EvenWhenMostOfTheTable(int bound)
    {
        await using var store = Store(massExpiryMinRows: bound);
        var (expired, _) = await FillAsync(store, expired: 30, live: 2);

        var listed = await store.ListExpiredAsync(null, 100);

        Assert.That(listed.Select(r => r.Key), Is.EqualTo(expired));
    }

    [Test]
    public async Task APageAfterARowNotListedByKey_GoesOnByExpiry()
    {
        await using var store = Store(massExpiryMinRows: 10);
        var (expired, _) = await FillAsync(store, expired: 30, live: 0);
        var first = await store.ListExpiredAsync(null, 5);

        // Not the last row of that page (keys of one millisecond share their prefix, so the tenth row by expiry may be it):
        // another caller's paging, by expiry from that row.
        var from = first[^1].Key.AsSpan().SequenceEqual(expired[9]) ? 10 : 9;
        var fromThere = await store.ListExpiredAsync(new SessionLifetime(expired[from], null, _filledAt, _filledAt.AddSeconds(10 + from)), 100);

        Assert.That(fromThere.Select(r => r.Key), Is.EqualTo(expired.Skip(from + 1)));
    }

    [Test]
    public async Task ACleanupRunInAMassExpiry_DeletesEveryExpiredRow_AndNoLiveOne_RaisingEachEnd()
    {
        await using var store = Store(massExpiryMinRows: 10);
        var (expired, live) = await FillAsync(store, expired: 45, live: 15);
        var options = new ServerSideSessionOptions { CleanupBatchSize = 7 };
        var ended = new List<string>();
        options.Events.OnEnded = c =>
        {
            ended.Add(c.SessionId);
            return Task.CompletedTask;
        };
        var cleaner = new SessionCleanupService(store, _time, Options.Create(options), new FakeLogger<SessionCleanupService>(),
            events: new SessionEvents(options.Events, options.AbsoluteTimeout, _time, new FakeLogger<SessionEvents>()));

        var deleted = await cleaner.RunOnceAsync(CancellationToken.None);

        Assert.Multiple(async () =>
        {
            Assert.That(deleted, Is.EqualTo(45));
            Assert.That(ended, Is.EquivalentTo(expired.Select(SessionMiddleware.Ids.SessionIds.ToPublicId)));
            foreach (var key in live)
            {
                Assert.That(await store.LoadAsync(key), Is.Not.Null);
            }

            Assert.That(await store.ListExpiredAsync(null, 100), Is.Empty);
        });
    }

    /// <summary>
    /// A row whose key is not a BLOB (SQLite's columns take any type; the library never writes one) used to stop every
    /// cleanup run that listed by expiry at that row. The cleaner now deletes every session around it, leaves it, and
    /// names it in a warning; listed by key (a mass expiry) the same.
    /// </summary>
    [TestCase(1_000_000, TestName = "ExpiredRowsWithAKeyThatIsNotABlob_AreLeftAndNamed_WhileEverySessionAroundThemIsDeleted(by expiry)")]
    [TestCase(10, TestName = "ExpiredRowsWithAKeyThatIsNotABlob_AreLeftAndNamed_WhileEverySessionAroundThemIsDeleted(by key)")]
    public async Task ExpiredRowsWithAKeyThatIsNotABlob_AreLeftAndNamed_WhileEverySessionAroundThemIsDeleted(int massExpiryMinRows)
    {
        var storeLogger = new FakeLogger<SqliteSessionStore>();
        await using var store = new SqliteSessionStore(
            SqliteStoreSettings.From(new ServerSideSessionOptions { ConnectionString = $"Data Source={Folder.File("mass.db")}" }) with { MassExpiryMinRows = massExpiryMinRows },
            _time, storeLogger, SqliteSessionStore.DefaultCheckpointInterval);
        var (expired, live) = await FillAsync(store, expired: 30, live: 5);
        await using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Folder.File("mass.db")}"))
        {
            await connection.OpenAsync();
            var command = connection.CreateCommand();
            command.CommandText =
                "INSERT INTO sessions (id, data, created_at, last_access, version, expires_at) VALUES " +
                "('text-key', x'01', @At, @At, 1, @At), (42, x'01', @At, @At, 1, @At), (hex(randomblob(32)), x'01', @At, @At, 1, @At);";
            command.Parameters.AddWithValue("@At", _filledAt.AddSeconds(15).ToUnixTimeSeconds());
            await command.ExecuteNonQueryAsync();
        }

        var cleanerLogger = new FakeLogger<SessionCleanupService>();
        var cleaner = new SessionCleanupService(store, _time, Options.Create(new ServerSideSessionOptions { CleanupBatchSize = 7 }), cleanerLogger);
        var deleted = await cleaner.RunOnceAsync(CancellationToken.None);
        var warnings = storeLogger.Collector.GetSnapshot().Where(r => r.Id.Name == "CleanupForeignRowsLeft").ToList();

        Assert.Multiple(async () =>
        {
            Assert.That(deleted, Is.EqualTo(expired.Count), "every expired session, the rows after the foreign ones too");
            Assert.That(cleanerLogger.Collector.GetSnapshot().Where(r => r.Id.Name == "CleanupFailed"), Is.Empty);
            Assert.That(await store.ListExpiredAsync(null, 100), Is.Empty);
            foreach (var key in live)
            {
                Assert.That(await store.LoadAsync(key), Is.Not.Null);
            }

            Assert.That(warnings, Has.Count.EqualTo(1), "one warning per run");
            Assert.That(warnings.FirstOrDefault()?.Level, Is.EqualTo(LogLevel.Warning));
            Assert.That(warnings.FirstOrDefault()?.Message, Does.Contain("leaves 3 expired rows"));
        });
    }
}
