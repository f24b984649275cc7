using System.Data.Common;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using SessionMiddleware.PostgreSql;
using SessionMiddleware.Storage.Sqlite;

namespace SessionMiddleware.Tests.Infrastructure;

/// <summary>
/// One empty database of one kind for a store-level test: makes stores over it and runs raw SQL against it.
/// <c>sqlite</c>: a file in a temp folder; <c>postgres</c>: a new database on the shared test cluster;
/// <c>postgres-partitioned</c>: the same with the <c>sessions</c> table made first as a DBA would, hash-partitioned by
/// <c>id</c> (<see cref="PartitionedSessionsTable"/>).
/// </summary>
internal abstract class StoreBackend : IAsyncDisposable
{
    public const string Sqlite = "sqlite";
    public const string Postgres = "postgres";
    public const string PostgresPartitioned = "postgres-partitioned";

    /// <summary>The session table as docs/scaling.md shows a DBA making it: hash-partitioned by <c>id</c> into 8 partitions.</summary>
    public const string PartitionedSessionsTable =
        """
        CREATE TABLE sessions (
            id bytea NOT NULL PRIMARY KEY,
            user_id text NULL,
            data bytea NOT NULL,
            created_at bigint NOT NULL,
            last_access bigint NOT NULL,
            version bigint NOT NULL,
            ip text NULL,
            user_agent text NULL,
            expires_at bigint NOT NULL,
            signed_in_at bigint NULL,
            idp_issuer text NULL,
            idp_sid text NULL,
            idp_subject text NULL,
            credential_stamp text NULL
        ) PARTITION BY HASH (id);
        CREATE TABLE sessions_p0 PARTITION OF sessions FOR VALUES WITH (MODULUS 8, REMAINDER 0);
        CREATE TABLE sessions_p1 PARTITION OF sessions FOR VALUES WITH (MODULUS 8, REMAINDER 1);
        CREATE TABLE sessions_p2 PARTITION OF sessions FOR VALUES WITH (MODULUS 8, REMAINDER 2);
        CREATE TABLE sessions_p3 PARTITION OF sessions FOR VALUES WITH (MODULUS 8, REMAINDER 3);
        CREATE TABLE sessions_p4 PARTITION OF sessions FOR VALUES WITH (MODULUS 8, REMAINDER 4);
        CREATE TABLE sessions_p5 PARTITION OF sessions FOR VALUES WITH (MODULUS 8, REMAINDER 5);
        CREATE TABLE sessions_p6 PARTITION OF sessions FOR VALUES WITH (MODULUS 8, REMAINDER 6);
        CREATE TABLE sessions_p7 PARTITION OF sessions FOR VALUES WITH (MODULUS 8, REMAINDER 7);
        """;

    public abstract string Kind { get; }

    /// <summary>The dialect's type names, as the store's schema check reports them.</summary>
    public abstract string BlobType { get; }

    public abstract string TextType { get; }

    public abstract string IntegerType { get; }

    /// <summary>The longest identifier the database keeps (it cuts longer ones), or null when it keeps names whole.</summary>
    public virtual int? MaxIdentifierLength => null;

    public static async Task<StoreBackend> CreateAsync(string kind) => kind switch
    {
        Sqlite => new SqliteBackend(),
        Postgres => await PostgresBackend.CreateDatabaseAsync(),
        PostgresPartitioned => await PostgresBackend.CreateDatabaseAsync(PartitionedSessionsTable),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "sqlite, postgres or postgres-partitioned"),
    };

    /// <summary>A store over this database (each call a new store, as another process would have).</summary>
    public IServerSideSessionStore CreateStore(TimeProvider time, Action<ServerSideSessionOptions>? configure = null)
    {
        var options = new ServerSideSessionOptions();
        configure?.Invoke(options);
        return CreateStore(options, time);
    }

    /// <summary>A store over this database with these options, their connection string set to this database's.</summary>
    public abstract IServerSideSessionStore CreateStore(ServerSideSessionOptions options, TimeProvider time);

    /// <summary>An exception as the driver raises for a failing database.</summary>
    public abstract DbException DatabaseError();

    /// <summary>Puts the schema-1 fixture (Fixtures/sessions-v1.*: a table made by the library at schema version 1, three sessions) in this database.</summary>
    public abstract Task LoadSchema1FixtureAsync();

    /// <summary>The test host app as a child process over this database, its Data Protection keys in <paramref name="folder"/>.</summary>
    public abstract Task<ChildHost> StartChildHostAsync(string folder);

    /// <summary>The path of a file in the test output's Fixtures folder.</summary>
    protected static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", name);

    public abstract Task ExecuteAsync(string sql);

    /// <summary>A new open connection to this database, unpooled (for a test that holds a transaction open).</summary>
    public abstract Task<DbConnection> OpenConnectionAsync();

    /// <summary>The first column of every row, as invariant text.</summary>
    public abstract Task<IReadOnlyList<string>> QueryAsync(string sql);

    /// <summary>Tables and indexes, as <c>table:name</c> and <c>index:name</c>.</summary>
    public abstract Task<IReadOnlyList<string>> ListObjectsAsync();

    /// <summary>The definitions of every table column and index, to compare before and after.</summary>
    public abstract Task<IReadOnlyList<string>> DumpSchemaAsync();

    public async Task<long> CountRowsAsync(string table = "sessions") =>
        long.Parse((await QueryAsync($"SELECT COUNT(*) FROM \"{table}\"")).Single(), CultureInfo.InvariantCulture);

    public abstract ValueTask DisposeAsync();

    protected static async Task<IReadOnlyList<string>> ReadFirstColumnAsync(DbCommand command)
    {
        await using var reader = await command.ExecuteReaderAsync();
        var result = new List<string>();
        while (await reader.ReadAsync())
        {
            result.Add(Convert.ToString(reader.GetValue(0), CultureInfo.InvariantCulture) ?? "");
        }

        return result;
    }

    private sealed class SqliteBackend : StoreBackend
    {
        private readonly TempFolder _folder = new();

        private string Database => _folder.File("s.db");

        public override string Kind => Sqlite;

        public override string BlobType => "BLOB";

        public override string TextType => "TEXT";

        public override string IntegerType => "INTEGER";

        public override Task LoadSchema1FixtureAsync()
        {
            File.Copy(Fixture("sessions-v1.db"), Database, overwrite: true);
            return Task.CompletedTask;
        }

        public override Task<ChildHost> StartChildHostAsync(string folder) => ChildHost.StartAsync(Database, Path.Combine(folder, "keys"));

        public override IServerSideSessionStore CreateStore(ServerSideSessionOptions options, TimeProvider time)
        {
            options.ConnectionString = $"Data Source={Database}";
            return new SqliteSessionStore(Options.Create(options), time, NullLogger<SqliteSessionStore>.Instance);
        }

        public override DbException DatabaseError() => new SqliteException("disk I/O error", 10);

        public override async Task ExecuteAsync(string sql)
        {
            await using var connection = await OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = sql;
            await command.ExecuteNonQueryAsync();
        }

        public override async Task<IReadOnlyList<string>> QueryAsync(string sql)
        {
            await using var connection = await OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = sql;
            return await ReadFirstColumnAsync(command);
        }

        public override Task<IReadOnlyList<string>> ListObjectsAsync() =>
            QueryAsync("SELECT type || ':' || name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name");

        public override Task<IReadOnlyList<string>> DumpSchemaAsync() => QueryAsync("SELECT sql FROM sqlite_master ORDER BY name");

        public override ValueTask DisposeAsync()
        {
            _folder.Dispose();
            return ValueTask.CompletedTask;
        }

        public override async Task<DbConnection> OpenConnectionAsync() => await OpenAsync();

        private async Task<SqliteConnection> OpenAsync()
        {
            var connection = new SqliteConnection($"Data Source={Database};Pooling=False");
            await connection.OpenAsync();
            return connection;
        }
    }

    private sealed class PostgresBackend : StoreBackend
    {
        private readonly PostgresServer _server;
        private readonly string _connectionString;
        private readonly List<NpgsqlDataSource> _dataSources = [];

        private PostgresBackend(PostgresServer server, string connectionString)
        {
            _server = server;
            _connectionString = connectionString;
        }

        public static async Task<PostgresBackend> CreateDatabaseAsync(string? setUp = null)
        {
            var server = await PostgresServer.SharedAsync();
            var backend = new PostgresBackend(server, await server.CreateDatabaseAsync());
            if (setUp is not null)
            {
                await backend.ExecuteAsync(setUp);
            }

            return backend;
        }

        public override string Kind => Postgres;

        public override string BlobType => "bytea";

        public override string TextType => "text";

        public override string IntegerType => "bigint";

        public override int? MaxIdentifierLength => 63;

        public string ConnectionString => _connectionString;

        public override async Task LoadSchema1FixtureAsync() => await ExecuteAsync(await File.ReadAllTextAsync(Fixture("sessions-v1.postgresql.sql")));

        public override Task<ChildHost> StartChildHostAsync(string folder)
        {
            Directory.CreateDirectory(folder);
            return ChildHost.StartAsync(Path.Combine(folder, "unused.db"), Path.Combine(folder, "keys"), postgres: _connectionString);
        }

        public override IServerSideSessionStore CreateStore(ServerSideSessionOptions options, TimeProvider time)
        {
            options.ConnectionString = _connectionString;
            var dataSource = PostgreSqlSessionDataSource.Create(options.ConnectionString);
            lock (_dataSources)
            {
                _dataSources.Add(dataSource);
            }

            return new PostgreSqlSessionStore(dataSource, Options.Create(options), time, NullLogger<PostgreSqlSessionStore>.Instance);
        }

        public override DbException DatabaseError() => new NpgsqlException("Exception while reading from stream");

        public override async Task ExecuteAsync(string sql)
        {
            await using var connection = await OpenAsync();
            await using var command = new NpgsqlCommand(sql, connection);
            await command.ExecuteNonQueryAsync();
        }

        public override async Task<IReadOnlyList<string>> QueryAsync(string sql)
        {
            await using var connection = await OpenAsync();
            await using var command = new NpgsqlCommand(sql, connection);
            return await ReadFirstColumnAsync(command);
        }

        public override Task<IReadOnlyList<string>> ListObjectsAsync() => QueryAsync(
            "SELECT kind || ':' || name FROM (" +
            "SELECT 'table' AS kind, tablename AS name FROM pg_tables WHERE schemaname = current_schema() " +
            "UNION ALL SELECT 'index', indexname FROM pg_indexes WHERE schemaname = current_schema()) o ORDER BY name, kind");

        public override Task<IReadOnlyList<string>> DumpSchemaAsync() => QueryAsync(
            "SELECT d FROM (" +
            "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable AS d FROM information_schema.columns WHERE table_schema = current_schema() " +
            "UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()) s ORDER BY d");

        public override async ValueTask DisposeAsync()
        {
            foreach (var dataSource in _dataSources)
            {
                await dataSource.DisposeAsync();
            }

            await _server.DropDatabaseAsync(_connectionString);
        }

        public override async Task<DbConnection> OpenConnectionAsync() => await OpenAsync();

        private async Task<NpgsqlConnection> OpenAsync()
        {
            var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_connectionString) { Pooling = false }.ConnectionString);
            await connection.OpenAsync();
            return connection;
        }
    }
}
