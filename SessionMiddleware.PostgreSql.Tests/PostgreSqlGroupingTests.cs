using System.Diagnostics;
using System.Security.Cryptography;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using SessionMiddleware.Storage;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// The PostgreSQL store's grouping. Group commit: writes issued at once share one batch (one transaction), and each
/// still gets exactly the answer it would have had alone: a failing write fails alone, a version conflict stays a
/// conflict, a missing row stays missing. Group load: loads issued at once are read by one statement, and each still
/// gets exactly what it would have had alone: its own row (its own copy of the data when two ask for one session),
/// nothing for a missing or expired row, every write committed before it asked, and the store's error when the group
/// fails.
/// </summary>
public sealed class PostgreSqlGroupingTests
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
    public async Task WritesAtOnce_OneOfThemFailing_OnlyThatOneFails_AndEveryOtherIsStored()
    {
        var keys = await CreateSessionsAsync();

        // All issued before any is awaited: they wait together for the writer, so most share a batch with the duplicate.
        var updates = keys.Select(k => _store.UpdateAsync(k, [2], expectedVersion: 1)).ToList();
        var duplicate = _store.CreateAsync(new NewSession(keys[Sessions / 2], [9], null, null, null));
        var touches = keys.Select(k => _store.TouchAsync(k)).ToList();

        Assert.That(async () => await duplicate, Throws.InstanceOf<PostgresException>().With.Property(nameof(PostgresException.SqlState)).EqualTo("23505"));
        Assert.That((await Task.WhenAll(updates)).Select(r => r.Status), Is.All.EqualTo(SessionUpdateStatus.Committed));
        Assert.That(await Task.WhenAll(touches), Is.All.True);
        foreach (var key in keys)
        {
            var stored = await _store.LoadAsync(key);
            Assert.That(stored!.Data, Is.EqualTo(new byte[] { 2 }), "the duplicate's failure undid no other write");
            Assert.That(stored.Version, Is.EqualTo(2));
        }
    }

    [Test]
    public async Task WritesAtOnce_ToTheSameVersion_OneCommits_TheOtherConflicts_AndAMissingRowIsNotFound()
    {
        var keys = await CreateSessionsAsync();

        var first = keys.Select(k => _store.UpdateAsync(k, [1], expectedVersion: 1)).ToList();
        var second = keys.Select(k => _store.UpdateAsync(k, [2], expectedVersion: 1)).ToList();
        var renewals = keys.Take(5).Select(k => _store.RenewAsync(k, expectedVersion: 1, new NewSession(NewKey(), [3], "u", null, null))).ToList();
        var missing = _store.UpdateAsync(NewKey(), [4], expectedVersion: 1);
        var deleted = _store.DeleteAsync(NewKey());

        var results = (await Task.WhenAll(first)).Concat(await Task.WhenAll(second)).Concat(await Task.WhenAll(renewals)).ToList();
        Assert.That(await missing, Is.EqualTo(new SessionUpdateResult(SessionUpdateStatus.NotFound, 0)));
        Assert.That(await deleted, Is.Null);
        for (var i = 0; i < Sessions; i++)
        {
            var mine = new[] { results[i], results[Sessions + i] }.Concat(i < 5 ? [results[2 * Sessions + i]] : []).ToList();
            Assert.That(mine.Count(r => r.Status == SessionUpdateStatus.Committed), Is.EqualTo(1), $"session {i}: exactly one write at version 1 wins");
            Assert.That(mine.Where(r => r.Status == SessionUpdateStatus.Committed).Single().Version, Is.EqualTo(2));
            // A losing update conflicts with the winner's version; after a winning renewal the old key is gone.
            Assert.That(mine.Where(r => r.Status != SessionUpdateStatus.Committed).Select(r => r.Status), Is.All.AnyOf(SessionUpdateStatus.Conflict, SessionUpdateStatus.NotFound));
            Assert.That(results[i].Status == SessionUpdateStatus.Committed || results[Sessions + i].Status == SessionUpdateStatus.Committed
                ? mine.Where(r => r.Status != SessionUpdateStatus.Committed).All(r => r.Status == SessionUpdateStatus.Conflict)
                : true, Is.True, $"session {i}: after a winning update the others conflict");
        }
    }

    [Test]
    public async Task UpdatesOfDifferentSessionsAtOnce_RunAsOneStatement_AndEachGetsItsOwnAnswerAndExpiry()
    {
        var keys = await CreateSessionsAsync();
        var shortLived = Enumerable.Range(0, 5).Select(_ => NewKey()).ToList();
        await Task.WhenAll(shortLived.Select(k => _store.CreateAsync(new NewSession(k, [0], null, null, null, ExpiresAt: _time.GetUtcNow().AddMinutes(1)))));
        _time.Advance(TimeSpan.FromMinutes(2));
        var now = _time.GetUtcNow();
        var explicitExpiry = now.AddHours(3);

        // Each key written once, all issued at once: they share batches as one grouped update. A quarter at a stale
        // version, a quarter with an expiry of their own; expired and missing rows in between.
        var updates = keys.Select((k, i) => (i % 4) switch
        {
            1 => _store.UpdateAsync(k, [(byte)i], expectedVersion: 7),
            2 => _store.UpdateAsync(k, [(byte)i], expectedVersion: 1, expiresAt: explicitExpiry),
            _ => _store.UpdateAsync(k, [(byte)i], expectedVersion: 1),
        }).ToList();
        var expired = shortLived.Select(k => _store.UpdateAsync(k, [9], expectedVersion: 1)).ToList();
        var missing = Enumerable.Range(0, 5).Select(_ => _store.UpdateAsync(NewKey(), [9], expectedVersion: 1)).ToList();

        var results = await Task.WhenAll(updates);
        Assert.That((await Task.WhenAll(expired)).Select(r => r.Status), Is.All.EqualTo(SessionUpdateStatus.NotFound), "an expired row is not updated");
        Assert.That((await Task.WhenAll(missing)).Select(r => r.Status), Is.All.EqualTo(SessionUpdateStatus.NotFound));
        var idle = new ServerSideSessionOptions().IdleTimeout;
        for (var i = 0; i < Sessions; i++)
        {
            var stored = await _store.LoadAsync(keys[i]);
            if (i % 4 == 1)
            {
                Assert.That(results[i], Is.EqualTo(new SessionUpdateResult(SessionUpdateStatus.Conflict, 0)), $"session {i}");
                Assert.That(stored!.Version, Is.EqualTo(1));
                Assert.That(stored.Data, Is.EqualTo(new byte[] { 0 }), "a stale update changes nothing");
                continue;
            }

            Assert.That(results[i], Is.EqualTo(new SessionUpdateResult(SessionUpdateStatus.Committed, 2)), $"session {i}");
            Assert.That(stored!.Version, Is.EqualTo(2));
            Assert.That(stored.Data, Is.EqualTo(new byte[] { (byte)i }));
            Assert.That(stored.LastAccessAt, Is.EqualTo(now));
            Assert.That(stored.ExpiresAt, Is.EqualTo(i % 4 == 2 ? explicitExpiry.AddTicks(-(explicitExpiry.Ticks % TimeSpan.TicksPerSecond)) : now + idle), $"session {i}");
        }
    }

    [Test]
    public async Task CreatesAtOnce_RunAsOneStatement_AndEachRowHasItsOwnValues()
    {
        var now = _time.GetUtcNow();
        var explicitExpiry = now.AddHours(5);
        var keys = Enumerable.Range(0, Sessions).Select(_ => NewKey()).ToList();

        // All issued at once: most share a batch, where the creations of distinct keys are one grouped insert. Every
        // other one signed in, with an address and a user agent; every third with an expiry of its own.
        var created = await Task.WhenAll(keys.Select((k, i) => _store.CreateAsync(new NewSession(
            k, [(byte)i], i % 2 == 0 ? $"user-{i}" : null, i % 2 == 0 ? $"10.0.0.{i}" : null, i % 2 == 0 ? $"agent {i}" : null,
            i % 3 == 0 ? explicitExpiry : null))));

        var idle = new ServerSideSessionOptions().IdleTimeout;
        var wholeSecond = explicitExpiry.AddTicks(-(explicitExpiry.Ticks % TimeSpan.TicksPerSecond));
        for (var i = 0; i < Sessions; i++)
        {
            var stored = await _store.LoadAsync(keys[i]);
            Assert.That(stored, Is.Not.Null, $"session {i}");
            Assert.That((stored!.Data, stored.Version, stored.UserId, stored.CreatedAt, stored.LastAccessAt), Is.EqualTo((new byte[] { (byte)i }, 1L, i % 2 == 0 ? $"user-{i}" : null, now, now)), $"session {i}");
            Assert.That(stored.ExpiresAt, Is.EqualTo(i % 3 == 0 ? wholeSecond : now + idle), $"session {i}");
            Assert.That(created[i].ExpiresAt, Is.EqualTo(stored.ExpiresAt), $"session {i}: the answer is what was stored");
            if (i % 2 == 0)
            {
                var listed = (await _store.ListByUserAsync($"user-{i}", 10)).Single();
                Assert.That((listed.IpAddress, listed.UserAgent), Is.EqualTo(($"10.0.0.{i}", $"agent {i}")), $"session {i}");
            }
        }
    }

    [Test]
    public async Task CreatesAtOnce_OneOfThemADuplicate_OnlyThatOneFails_AndEveryOtherIsStored()
    {
        var existing = await CreateSessionsAsync();
        var keys = Enumerable.Range(0, Sessions).Select(_ => NewKey()).ToList();

        // The duplicate is in the grouped insert of its batch: that statement fails whole, and each of its writes runs again alone.
        var creates = keys.Select((k, i) => _store.CreateAsync(new NewSession(k, [(byte)i], null, null, null))).ToList();
        var duplicate = _store.CreateAsync(new NewSession(existing[3], [9], "intruder", null, null));

        Assert.That(async () => await duplicate, Throws.InstanceOf<PostgresException>().With.Property(nameof(PostgresException.SqlState)).EqualTo("23505"));
        await Task.WhenAll(creates);
        for (var i = 0; i < Sessions; i++)
        {
            Assert.That((await _store.LoadAsync(keys[i]))?.Data, Is.EqualTo(new byte[] { (byte)i }), $"session {i} was stored although another creation of its batch failed");
        }

        var untouched = await _store.LoadAsync(existing[3]);
        Assert.That((untouched!.Data, untouched.UserId), Is.EqualTo((new byte[] { 0 }, (string?)null)), "the duplicate changed nothing");
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

    [Test]
    public async Task LoadsAtAServerThatDoesNotAnswer_AreAnsweredByTheirCallersTimeout_AndLoadsWorkAgainOnceItAnswers()
    {
        var key = NewKey();
        await _store.CreateAsync(new NewSession(key, [3], null, null, null));
        await using var locker = await _db.OpenConnectionAsync();
        await using var transaction = await locker.BeginTransactionAsync();
        await using (var command = locker.CreateCommand())
        {
            // Every read of the table now waits for this transaction: the groups sent meanwhile stay at the server.
            command.Transaction = transaction;
            command.CommandText = $"LOCK TABLE {new ServerSideSessionOptions().TableName} IN ACCESS EXCLUSIVE MODE";
            await command.ExecuteNonQueryAsync();
        }

        // More loads, one after the other, than there are groups at the server at once; each with its own timeout (what
        // IOTimeout gives a request's store call). The last ones wait for a free slot, not at the server.
        var timeout = TimeSpan.FromMilliseconds(300);
        var elapsed = Stopwatch.StartNew();
        var loads = new List<Task>();
        for (var i = 0; i < 4; i++)
        {
            var cancel = new CancellationTokenSource(timeout);
            loads.Add(_store.LoadAsync(key, cancel.Token).ContinueWith(t => { cancel.Dispose(); return t; }, TaskScheduler.Default).Unwrap());
            await Task.Delay(50);
        }

        foreach (var load in loads)
        {
            // Not answered within 5 s would be a TimeoutException: the caller waited for the server.
            Assert.That(async () => await load.WaitAsync(TimeSpan.FromSeconds(5)), Throws.InstanceOf<OperationCanceledException>());
        }

        Assert.That(elapsed.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)), "each caller was answered by its own timeout, not by the server");

        await transaction.RollbackAsync();
        using var eventually = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var row = await _store.LoadAsync(key, eventually.Token);
        Assert.That(row!.Data, Is.EqualTo(new byte[] { 3 }), "the groups that waited at the server ended, and their slots serve new loads");
    }

    private static byte[] NewKey() => RandomNumberGenerator.GetBytes(32);

    private async Task<List<byte[]>> CreateSessionsAsync()
    {
        var keys = Enumerable.Range(0, Sessions).Select(_ => NewKey()).ToList();
        await Task.WhenAll(keys.Select(k => _store.CreateAsync(new NewSession(k, [0], null, null, null))));
        return keys;
    }
}
