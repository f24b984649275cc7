using SessionMiddleware.Specification.Tests;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// Our stores through the store specification suite (SessionMiddleware.Specification.Tests), each on a real
/// database made by <see cref="StoreBackend"/>, which holds what is dialect-specific. SQLite-only checks are in
/// <see cref="SqliteStoreTests"/>, the cleaner's runs over each store in <see cref="CleanupRunTests"/>.
/// </summary>
public abstract class StoreSpecificationTests(string kind) : ServerSideSessionStoreSpecificationTests
{
    private StoreBackend _db = null!;

    protected override string BlobType => _db.BlobType;

    protected override string TextType => _db.TextType;

    protected override string IntegerType => _db.IntegerType;

    protected override int? MaxIdentifierLength => _db.MaxIdentifierLength;

    protected override async Task CreateDatabaseAsync() => _db = await StoreBackend.CreateAsync(kind);

    protected override Task DeleteDatabaseAsync() => _db.DisposeAsync().AsTask();

    protected override IServerSideSessionStore CreateStore(ServerSideSessionOptions options, TimeProvider timeProvider) => _db.CreateStore(options, timeProvider);

    protected override Task ExecuteAsync(string sql) => _db.ExecuteAsync(sql);

    protected override Task<IReadOnlyList<string>> QueryAsync(string sql) => _db.QueryAsync(sql);

    protected override Task<IReadOnlyList<string>> ListObjectsAsync() => _db.ListObjectsAsync();

    protected override Task<IReadOnlyList<string>> DumpSchemaAsync() => _db.DumpSchemaAsync();
}

/// <summary>The SQLite store (a database file in a per-test temp folder) through the store specification suite.</summary>
[LaneFixture]
public sealed class SqliteStoreSpecificationTests() : StoreSpecificationTests(StoreBackend.Sqlite);

/// <summary>The PostgreSQL store (a new database on the shared test cluster) through the store specification suite.</summary>
[LaneFixture, InLane(TestLane.PostgreSql)]
public sealed class PostgreSqlStoreSpecificationTests() : StoreSpecificationTests(StoreBackend.Postgres);

/// <summary>
/// The PostgreSQL store through the store specification suite on a session table that the DBA made first,
/// hash-partitioned by <c>id</c> into 8 partitions (<see cref="StoreBackend.PartitionedSessionsTable"/>): the
/// migration accepts it and every statement runs unchanged on it.
/// </summary>
[LaneFixture, InLane(TestLane.PostgreSql)]
public sealed class PartitionedPostgreSqlStoreSpecificationTests() : StoreSpecificationTests(StoreBackend.PostgresPartitioned)
{
    // These make a "sessions" table of their own, or check that there is none: with the DBA's table there, they do not apply.
    private static readonly string[] MakeTheirOwnTable =
    [
        nameof(CheckSchema_AgainstATableOfAnotherShape_Throws),
        nameof(Migrate_AgainstATableOfAnotherShape_ThrowsNamingTableAndColumns_AndLeavesItUntouched),
        nameof(Migrate_AgainstSameColumnsWithoutThePrimaryKey_Throws),
        nameof(Migrate_WithACustomTableName_UsesIt),
    ];

    [SetUp]
    public void SkipTestsThatMakeTheirOwnTable()
    {
        if (MakeTheirOwnTable.Contains(TestContext.CurrentContext.Test.MethodName))
        {
            Assert.Ignore("makes its own sessions table or expects none; the DBA's partitioned one is already there");
        }
    }
}
