using System.Data.Common;
using System.Diagnostics;
using SessionMiddleware.Storage;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// A node that starts while others serve requests migrates an up-to-date table without taking a lock that makes
/// session reads or writes wait (PostgreSQL: SQLite has one writer at a time anyway); a table with something missing
/// still gets it, on both stores. PostgreSQL also on a table the DBA hash-partitioned.
/// </summary>
[LaneFixture(StoreBackend.Postgres)]
[LaneFixture(StoreBackend.PostgresPartitioned)]
public sealed class MigrationLockTests(string kind)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(5);

    private StoreBackend _db = null!;

    [SetUp]
    public async Task SetUp() => _db = await StoreBackend.CreateAsync(kind);

    [TearDown]
    public async Task TearDown() => await _db.DisposeAsync();

    [Test]
    public async Task Migrate_OfAnUpToDateTable_WhileAWriteTransactionIsOpen_CompletesAndNoOtherWriteWaitsForIt()
    {
        var time = StoreFactory.NewTime();
        var running = _db.CreateStore(time);
        await running.MigrateAsync();
        await running.CreateAsync(NewRow());

        // A request of a running node in the middle of its write: the row and the table's write lock held.
        await using var holder = await _db.OpenConnectionAsync();
        var transaction = await holder.BeginTransactionAsync();
        await ExecuteAsync(holder, transaction, "UPDATE sessions SET last_access = last_access + 1;");

        var migration = _db.CreateStore(time).MigrateAsync();
        await WaitUntilCompletedOrWaitingForALockAsync(migration);
        var stopwatch = Stopwatch.StartNew();
        var write = running.CreateAsync(NewRow());
        var writeDone = await Task.WhenAny(write, Task.Delay(Bound)) == write;
        var writeWait = stopwatch.Elapsed;
        var migrationDone = migration.IsCompleted;

        await transaction.RollbackAsync();
        await migration;
        await write;
        TestContext.Out.WriteLine(
            $"write beside an open transaction and a second node's migration: waited {writeWait.TotalMilliseconds:F0} ms " +
            $"(the transaction was held up to {Bound.TotalMilliseconds:F0} ms); migration finished while the transaction was open: {migrationDone}");
        Assert.Multiple(() =>
        {
            Assert.That(migrationDone, Is.True, "the migration of an up-to-date table does not wait for open transactions");
            Assert.That(writeDone, Is.True, $"a write did not finish within {Bound.TotalSeconds} s: it queued behind the migration's lock");
        });
    }

    private static NewSession NewRow() => new(StoreFactory.NewKey(), [1], null, null, null);

    private async Task WaitUntilCompletedOrWaitingForALockAsync(Task migration)
    {
        var deadline = Stopwatch.StartNew();
        while (!migration.IsCompleted && deadline.Elapsed < Bound)
        {
            if ((await _db.QueryAsync("SELECT count(*) FROM pg_locks WHERE NOT granted")).Single() != "0")
            {
                return;
            }

            await Task.Delay(20);
        }
    }

    private static async Task ExecuteAsync(DbConnection connection, DbTransaction transaction, string sql)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }
}

/// <summary>The migration's read-only check lets through only a complete table: whatever is missing is still created.</summary>
[LaneFixture(StoreBackend.Sqlite)]
[LaneFixture(StoreBackend.Postgres)]
[LaneFixture(StoreBackend.PostgresPartitioned)]
public sealed class MigrationRepairTests(string kind)
{
    private StoreBackend _db = null!;

    [SetUp]
    public async Task SetUp() => _db = await StoreBackend.CreateAsync(kind);

    [TearDown]
    public async Task TearDown() => await _db.DisposeAsync();

    [TestCase("expires_at")]
    [TestCase("created_at")]
    [TestCase("user_id")]
    public async Task Migrate_WhenAnIndexIsMissing_CreatesIt_AndKeepsTheRows(string column)
    {
        var time = StoreFactory.NewTime();
        var store = _db.CreateStore(time);
        await store.MigrateAsync();
        await store.CreateAsync(new NewSession(StoreFactory.NewKey(), [1], null, null, null));
        await _db.ExecuteAsync($"DROP INDEX \"ix_sessions_{column}\";");

        await _db.CreateStore(time).MigrateAsync();

        Assert.Multiple(async () =>
        {
            Assert.That(await _db.ListObjectsAsync(), Does.Contain($"index:ix_sessions_{column}"));
            Assert.That(await _db.CountRowsAsync(), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task Migrate_WhenTheSchemaRecordIsMissing_RecordsIt()
    {
        var time = StoreFactory.NewTime();
        await _db.CreateStore(time).MigrateAsync();
        await _db.ExecuteAsync("DELETE FROM __session_middleware_schema;");

        await _db.CreateStore(time).MigrateAsync();

        Assert.That(await _db.QueryAsync("SELECT table_name FROM __session_middleware_schema"), Is.EqualTo(new[] { "sessions" }));
    }
}
