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
[TestFixture]
public sealed class SqliteStoreSpecificationTests() : StoreSpecificationTests(StoreBackend.Sqlite);

/// <summary>The PostgreSQL store (a new database on the shared test cluster) through the store specification suite.</summary>
[TestFixture]
public sealed class PostgreSqlStoreSpecificationTests() : StoreSpecificationTests(StoreBackend.Postgres);
