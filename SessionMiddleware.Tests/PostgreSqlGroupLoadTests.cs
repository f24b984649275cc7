using System.Security.Cryptography;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Storage;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// The PostgreSQL store's group load: loads issued at once are read by one statement, and each still gets exactly what
/// it would have had alone: its own row (its own copy of the data when two ask for one session), nothing for a missing
/// or expired row, every write committed before it asked, and the store's error when the group fails.
/// </summary>
public sealed class PostgreSqlGroupLoadTests
{
    private const int Sessions = 40;

    private StoreBackend _db = null!;
    private IServerSideSessionStore _store = null!;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));

    [SetUp]
    public async Task SetUp()
    {
        _db = await StoreBackend.CreateAsync(StoreBackend.Postgres);
        _store = _db.CreateStore(_time);
        await _store.MigrateAsync();
    }

    [TearDown]
    public async Task TearDown()
    {
        await ((IAsyncDisposable)_store).DisposeAsync();
        await _db.DisposeAsync();
    }

    [Test]
    public async Task LoadsAtOnce_EachGetsItsOwnRow_NothingForMissingOrExpiredRows_AndItsOwnCopyOfASharedRow()
    {
        var keys = Enumerable.Range(0, Sessions).Select(_ => NewKey()).ToList();
        await Task.WhenAll(keys.Select((k, i) => _store.CreateAsync(new NewSession(k, [(byte)i, 7], "user-" + i, null, null))));
        var expired = NewKey();
        await _store.CreateAsync(new NewSession(expired, [1], null, null, null, ExpiresAt: _time.GetUtcNow().AddMinutes(1)));
        _time.Advance(TimeSpan.FromMinutes(2));

        // All issued before any is awaited: every session twice, missing keys and the expired row in between.
        var loads = keys.Concat(keys).Select(k => _store.LoadAsync(k)).ToList();
        var missing = Enumerable.Range(0, 5).Select(_ => _store.LoadAsync(NewKey())).ToList();
        var expiredLoad = _store.LoadAsync(expired);

        var rows = await Task.WhenAll(loads);
        Assert.That(await Task.WhenAll(missing), Is.All.Null);
        Assert.That(await expiredLoad, Is.Null, "an expired row is no session");
        for (var i = 0; i < Sessions; i++)
        {
            foreach (var row in new[] { rows[i], rows[Sessions + i] })
            {
                Assert.That(row, Is.Not.Null);
                Assert.That(row!.Key, Is.EqualTo(keys[i]));
                Assert.That(row.Data, Is.EqualTo(new byte[] { (byte)i, 7 }));
                Assert.That(row.UserId, Is.EqualTo("user-" + i));
                Assert.That(row.Version, Is.EqualTo(1));
            }

            rows[i]!.Data[1] = 99;
            Assert.That(rows[Sessions + i]!.Data[1], Is.EqualTo(7), "two callers of one session never share one array");
        }
    }

    [Test]
    public async Task ALoad_SeesEveryWriteCommittedBeforeItWasAsked()
    {
        var keys = Enumerable.Range(0, Sessions).Select(_ => NewKey()).ToList();
        await Task.WhenAll(keys.Select(k => _store.CreateAsync(new NewSession(k, [0], null, null, null))));

        // Each session written and read back at once, all sessions at the same time: loads of other sessions are at the
        // server while one is asked for, so most loads join a group that formed before their write committed.
        await Task.WhenAll(keys.Select(async k =>
        {
            for (var version = 1; version <= 5; version++)
            {
                var update = await _store.UpdateAsync(k, [(byte)version], expectedVersion: version);
                Assert.That(update.Status, Is.EqualTo(SessionUpdateStatus.Committed));
                var row = await _store.LoadAsync(k);
                Assert.That(row!.Version, Is.EqualTo(version + 1));
                Assert.That(row.Data, Is.EqualTo(new byte[] { (byte)version }));
            }
        }));
    }

    [Test]
    public async Task ACancelledLoad_IsCancelled_AndTheOthersOfItsGroupAreAnswered()
    {
        var key = NewKey();
        await _store.CreateAsync(new NewSession(key, [5], null, null, null));
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        var loads = Enumerable.Range(0, 20).Select(_ => _store.LoadAsync(key)).ToList();
        var cancelledLoad = _store.LoadAsync(key, cancelled.Token);

        Assert.That(async () => await cancelledLoad, Throws.InstanceOf<OperationCanceledException>());
        Assert.That((await Task.WhenAll(loads)).Select(r => r!.Data[0]), Is.All.EqualTo(5));
    }

    [Test]
    public async Task LoadsAtOnce_FromATableNotMigrated_AllFailWithTheErrorThatNamesTheMigration()
    {
        var unmigrated = _db.CreateStore(_time, o => o.TableName = "never_migrated");
        try
        {
            var loads = Enumerable.Range(0, 10).Select(_ => unmigrated.LoadAsync(NewKey())).ToList();
            foreach (var load in loads)
            {
                var error = Assert.ThrowsAsync<InvalidOperationException>(async () => await load);
                Assert.That(error!.Message, Does.Contain("never_migrated").And.Contain("MigrateServerSideSessionsAsync"));
            }
        }
        finally
        {
            await ((IAsyncDisposable)unmigrated).DisposeAsync();
        }
    }

    private static byte[] NewKey() => RandomNumberGenerator.GetBytes(32);
}
