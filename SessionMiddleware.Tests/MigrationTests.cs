using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Storage.Sqlite;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>The migration creates what is missing, changes nothing that exists, and refuses a table of another shape.</summary>
public sealed class MigrationTests
{
    private TempFolder _folder = null!;
    private FakeTimeProvider _time = null!;
    private string _db = null!;

    [SetUp]
    public void SetUp()
    {
        _folder = new TempFolder();
        _time = StoreFactory.NewTime();
        _db = _folder.File("m.db");
    }

    [TearDown]
    public void TearDown() => _folder.Dispose();

    [Test]
    public async Task Migrate_OnAnEmptyDatabase_CreatesTheTableIndexesAndSchemaVersion()
    {
        await StoreFactory.Sqlite(_db, _time).MigrateAsync();

        var objects = Query("SELECT type || ':' || name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name");
        Assert.Multiple(() =>
        {
            Assert.That(objects, Is.SupersetOf(new[]
            {
                "table:sessions", "table:__session_middleware_schema",
                "index:ix_sessions_last_access", "index:ix_sessions_created_at", "index:ix_sessions_user_id",
            }));
            Assert.That(Query("SELECT table_name || '=' || version FROM __session_middleware_schema"), Is.EqualTo(new[] { "sessions=1" }));
        });
    }

    [Test]
    public async Task Migrate_Twice_ChangesNothing_AndKeepsTheData()
    {
        var store = StoreFactory.Sqlite(_db, _time);
        await store.MigrateAsync();
        var key = StoreFactory.NewKey();
        await store.CreateAsync(new NewSession(key, [42], null, null, null));
        var schemaBefore = Query("SELECT sql FROM sqlite_master ORDER BY name");

        _time.Advance(TimeSpan.FromMinutes(1));
        await StoreFactory.Sqlite(_db, _time).MigrateAsync();

        Assert.Multiple(async () =>
        {
            Assert.That(Query("SELECT sql FROM sqlite_master ORDER BY name"), Is.EqualTo(schemaBefore));
            Assert.That((await store.LoadAsync(key))!.Data, Is.EqualTo(new byte[] { 42 }));
        });
    }

    [Test]
    public async Task Migrate_FromSeveralStoresAtOnce_AllSucceed()
    {
        var stores = Enumerable.Range(0, 6).Select(_ => StoreFactory.Sqlite(_db, _time)).ToList();

        await Task.WhenAll(stores.Select(s => Task.Run(() => s.MigrateAsync())));

        Assert.That(Query("SELECT COUNT(*) FROM sqlite_master WHERE name = 'sessions'"), Is.EqualTo(new[] { "1" }));
    }

    [Test]
    public void Migrate_AgainstATableOfAnotherShape_ThrowsNamingTableAndColumns_AndLeavesItUntouched()
    {
        Execute("CREATE TABLE sessions (id TEXT PRIMARY KEY, value TEXT, expires INTEGER); INSERT INTO sessions VALUES ('x', 'user data', 1);");
        var before = Query("SELECT sql FROM sqlite_master ORDER BY name");

        var ex = Assert.ThrowsAsync<SessionStoreSchemaException>(() => StoreFactory.Sqlite(_db, _time).MigrateAsync());

        Assert.Multiple(() =>
        {
            Assert.That(ex!.TableName, Is.EqualTo("sessions"));
            Assert.That(ex.Message, Does.Contain("\"sessions\""));
            Assert.That(ex.Message, Does.Contain("id BLOB").And.Contain("last_access INTEGER"), "expected columns");
            Assert.That(ex.Message, Does.Contain("id TEXT").And.Contain("expires INTEGER"), "found columns");
            Assert.That(ex.FoundColumns, Is.EqualTo(new[] { "id TEXT PRIMARY KEY", "value TEXT", "expires INTEGER" }));
            Assert.That(Query("SELECT sql FROM sqlite_master ORDER BY name"), Is.EqualTo(before), "schema untouched");
            Assert.That(Query("SELECT value FROM sessions"), Is.EqualTo(new[] { "user data" }), "data untouched");
        });
    }

    [Test]
    public void Migrate_AgainstSameColumnsWithoutThePrimaryKey_Throws()
    {
        Execute("CREATE TABLE sessions (id BLOB, user_id TEXT, data BLOB, created_at INTEGER, last_access INTEGER, version INTEGER, ip TEXT, user_agent TEXT);");

        var ex = Assert.ThrowsAsync<SessionStoreSchemaException>(() => StoreFactory.Sqlite(_db, _time).MigrateAsync());

        Assert.That(ex!.Message, Does.Contain("id BLOB PRIMARY KEY"));
    }

    [Test]
    public void Migrate_AgainstANewerSchemaVersion_Throws()
    {
        Execute("CREATE TABLE __session_middleware_schema (table_name TEXT NOT NULL PRIMARY KEY, version INTEGER NOT NULL, migrated_at INTEGER NOT NULL); INSERT INTO __session_middleware_schema VALUES ('sessions', 99, 0);");

        var ex = Assert.ThrowsAsync<SessionStoreSchemaException>(() => StoreFactory.Sqlite(_db, _time).MigrateAsync());

        Assert.That(ex!.Message, Does.Contain("99").And.Contain("newer"));
    }

    [Test]
    public async Task Migrate_WithACustomTableName_UsesIt()
    {
        await StoreFactory.Sqlite(_db, _time, o => o.TableName = "App_Sessions_2").MigrateAsync();

        Assert.That(Query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'App_Sessions_2'"), Has.Count.EqualTo(1));
    }

    private void Execute(string sql)
    {
        using var connection = new SqliteConnection($"Data Source={_db};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private List<string> Query(string sql)
    {
        using var connection = new SqliteConnection($"Data Source={_db};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var result = new List<string>();
        while (reader.Read())
        {
            result.Add(Convert.ToString(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture) ?? "");
        }

        return result;
    }
}
