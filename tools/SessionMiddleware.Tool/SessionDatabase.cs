using System.Data.Common;
using Dapper;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using SessionMiddleware.PostgreSql;
using SessionMiddleware.Storage;
using SessionMiddleware.Storage.Sqlite;

namespace SessionMiddleware.Tool;

/// <summary>The database and table a command works on, resolved from the command line and the app's settings.</summary>
internal sealed class Target
{
    public required string Provider { get; init; }

    public required string ConnectionString { get; init; }

    /// <summary>Applies the app's settings, then the command line's options, to the options the tool's store is built with.</summary>
    public required Action<ServerSideSessionOptions> Configure { get; init; }

    /// <summary>The files and variables the app's settings were read from (none without --appsettings).</summary>
    public IReadOnlyList<string> SettingsSources { get; init; } = [];

    public required string TableName { get; init; }

    public required TimeSpan IdleTimeout { get; init; }

    public TimeSpan? AbsoluteTimeout { get; init; }

    public required TimeSpan BusyTimeout { get; init; }

    public bool IsSqlite => Provider == Providers.Sqlite;

    /// <summary>The SQLite file's full path (SQLite only).</summary>
    public string SqlitePath => Path.GetFullPath(new SqliteConnectionStringBuilder(ConnectionString).DataSource);

    public static Target Resolve(GlobalOptions o)
    {
        AppSettings? settings = o.AppSettings is { } file ? AppSettings.Read(file, o.Section, o.Environment) : null;

        string? connection = null;
        if (o.ConnectionEnv is { } variable)
        {
            connection = Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value
                ? value
                : throw new UsageException($"the environment variable {variable} is not set");
        }

        connection = o.Connection ?? connection;
        if (connection is null && settings is not null)
        {
            connection = RelativeTo(settings.ConnectionString(), settings.Folder, o.Provider);
        }

        if (connection is null)
        {
            throw new UsageException("say which database: --connection, --connection-env or --appsettings");
        }

        void Configure(ServerSideSessionOptions options)
        {
            settings?.Section.Bind(options);
            if (o.Table is { } tableName)
            {
                options.TableName = tableName;
            }

            if (o.IdleTimeout is { } idle)
            {
                options.IdleTimeout = idle;

                // The tool never records an access, so the touch interval only has to pass validation: an idle
                // timeout given here that is under it (the default is a minute) must not fail the command.
                if (options.TouchInterval >= idle)
                {
                    options.TouchInterval = TimeSpan.Zero;
                }
            }

            if (o.AbsoluteTimeout is { } absolute)
            {
                options.AbsoluteTimeout = absolute;
            }

            if (o.BusyTimeout is { } busy)
            {
                options.BusyTimeout = busy;
            }
        }

        var resolved = new ServerSideSessionOptions();
        Configure(resolved);
        return new Target
        {
            Provider = o.Provider ?? Providers.Detect(connection),
            ConnectionString = connection,
            Configure = Configure,
            SettingsSources = settings?.Sources ?? [],
            TableName = resolved.TableName,
            IdleTimeout = resolved.IdleTimeout,
            AbsoluteTimeout = resolved.AbsoluteTimeout,
            BusyTimeout = resolved.BusyTimeout,
        };
    }

    // A relative SQLite path in the app's settings is relative to the app's folder, where its appsettings.json is.
    private static string RelativeTo(string connectionString, string folder, string? provider)
    {
        if ((provider ?? Providers.Detect(connectionString)) != Providers.Sqlite)
        {
            return connectionString;
        }

        var builder = new SqliteConnectionStringBuilder(connectionString);
        if (builder.DataSource.Length > 0 && builder.DataSource != ":memory:" && !Path.IsPathRooted(builder.DataSource))
        {
            builder.DataSource = Path.Combine(folder, builder.DataSource);
        }

        return builder.ToString();
    }
}

internal static class Providers
{
    public const string Sqlite = "sqlite";
    public const string PostgreSql = "postgresql";

    /// <summary>PostgreSQL when the connection string names a host; SQLite otherwise.</summary>
    public static string Detect(string connectionString)
    {
        try
        {
            var builder = new DbConnectionStringBuilder { ConnectionString = connectionString };
            return builder.ContainsKey("Host") || builder.ContainsKey("Server") ? PostgreSql : Sqlite;
        }
        catch (ArgumentException ex)
        {
            throw new UsageException($"not a connection string: {ex.Message}");
        }
    }
}

/// <summary>
/// The session store and manager over the target, built as the app builds them (public registration API), plus a
/// raw connection for the maintenance statements of <see cref="SessionSql"/>.
/// </summary>
internal sealed class SessionDatabase : IAsyncDisposable
{
    private readonly ServiceProvider _services;

    private SessionDatabase(Target target, string connectionString)
    {
        Target = target;
        ConnectionString = connectionString;
        var services = new ServiceCollection();
        var builder = services.AddServerSideSessions(o =>
        {
            target.Configure(o);
            o.ConnectionString = connectionString;
        });
        if (!target.IsSqlite)
        {
            builder.UsePostgreSql();
        }

        _services = services.BuildServiceProvider();
        Sql = new SessionSql(target.IsSqlite ? SqliteDialect.Instance : PostgreSqlDialect.Instance, target.TableName);
        Expiry = SessionStoreSettings.From(_services.GetRequiredService<Microsoft.Extensions.Options.IOptions<ServerSideSessionOptions>>().Value).Expiry(TimeProvider.System);
    }

    public Target Target { get; }

    public string ConnectionString { get; }

    public SessionSql Sql { get; }

    public SessionExpiry Expiry { get; }

    public IServerSideSessionStore Store => _services.GetRequiredService<IServerSideSessionStore>();

    public ISessionManager Manager => _services.GetRequiredService<ISessionManager>();

    /// <summary>
    /// Opens the target. Only <paramref name="create"/> (migrate) may create a missing SQLite file; every other
    /// command opens it read-write without creating it, so a typo in the path is an error.
    /// </summary>
    public static SessionDatabase Open(Target target, bool create)
    {
        if (target.Provider is not (Providers.Sqlite or Providers.PostgreSql))
        {
            throw new UsageException($"unknown provider \"{target.Provider}\" (sqlite or postgresql)");
        }

        if (!SessionTableSchema.IsValidTableName(target.TableName))
        {
            throw new UsageException($"invalid table name \"{target.TableName}\" (letters, digits and _, not starting with a digit, at most 63)");
        }

        var connectionString = target.ConnectionString;
        if (target.IsSqlite)
        {
            var builder = new SqliteConnectionStringBuilder(connectionString);
            if (string.IsNullOrWhiteSpace(builder.DataSource))
            {
                throw new ToolException("the connection string names no SQLite file: set 'Data Source=path/to/sessions.db'");
            }

            if (!create)
            {
                if (!File.Exists(target.SqlitePath))
                {
                    throw new ToolException($"no SQLite database at {target.SqlitePath} (nothing was created; 'dotnet-sessions migrate' creates it)");
                }

                builder.Mode = SqliteOpenMode.ReadWrite;
            }

            connectionString = builder.ToString();
        }

        var database = new SessionDatabase(target, connectionString);
        try
        {
            _ = database.Store; // validates the options as the app's startup does
            return database;
        }
        catch
        {
            database._services.Dispose();
            throw;
        }
    }

    public async Task<DbConnection> OpenConnectionAsync(CancellationToken cancellationToken)
    {
        if (Target.IsSqlite)
        {
            var sqlite = new SqliteConnection(new SqliteConnectionStringBuilder(ConnectionString) { Pooling = false }.ToString());
            await sqlite.OpenAsync(cancellationToken);
            await sqlite.ExecuteAsync(new CommandDefinition(
                $"PRAGMA busy_timeout = {(long)Target.BusyTimeout.TotalMilliseconds};", cancellationToken: cancellationToken));
            return sqlite;
        }

        var postgres = new NpgsqlConnection(ConnectionString);
        await postgres.OpenAsync(cancellationToken);
        return postgres;
    }

    /// <summary>
    /// Checks the table before <paramref name="command"/> reads or writes it, so that a command pointed at another
    /// table (an app's users, say) changes nothing: a table without the session table's columns is refused (exit 2),
    /// naming what it lacks. A missing table is an error naming migrate unless <paramref name="mayBeMissing"/>; a
    /// session table of an older schema version is accepted only by <paramref name="acceptOlderSchema"/> (migrate upgrades it,
    /// drop drops it); the others ask for migrate, as the app's startup does.
    /// </summary>
    /// <returns>Whether the table exists.</returns>
    public async Task<bool> RequireSessionTableAsync(
        DbConnection connection, string command, CancellationToken cancellationToken, bool mayBeMissing = false, bool acceptOlderSchema = false)
    {
        var found = (await connection.QueryAsync<CatalogColumn>(new CommandDefinition(
            Sql.Dialect.SelectColumns, new { Sql.TableName }, cancellationToken: cancellationToken))).AsList();
        if (found.Count == 0)
        {
            return mayBeMissing
                ? false
                : throw new ToolException($"the table \"{Target.TableName}\" does not exist in {Describe()} ('dotnet-sessions migrate' creates it)");
        }

        var expected = Sql.Dialect.Columns();
        if (SessionTableSchema.HasExpectedShape(found, expected))
        {
            return true;
        }

        var older = SessionTableSchema.HasExpectedShape(found, Sql.Dialect.Columns(1)) ? "1"
            : SessionTableSchema.HasExpectedShape(found, Sql.Dialect.Columns(3)) ? "2 or 3" : null;
        if (older is not null)
        {
            return acceptOlderSchema
                ? true
                : throw new ToolException(
                    $"the session table \"{Target.TableName}\" in {Describe()} has schema version {older}; 'dotnet-sessions migrate' upgrades it (every row kept), then {command} works");
        }

        var lacks = expected.Where(e => !found.Any(f => string.Equals(f.Name, e.Name, StringComparison.OrdinalIgnoreCase))).Select(e => e.Name).ToList();
        var what = lacks.Count > 0
            ? $"it lacks the columns {string.Join(", ", lacks)}"
            : $"its columns differ from a session table's ({string.Join(", ", expected.Select(e => $"{e.Name} {e.Type}"))}, id the primary key)";
        throw new UsageException(
            $"refusing to {command} \"{Target.TableName}\": it is not a SessionMiddleware session table: {what} (found: {string.Join(", ", found)}); " +
            "nothing was changed. Name the session table with --table, or TableName in the app's settings");
    }

    public async Task<SessionTableStatistics> StatisticsAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        var command = Sql.Statistics(Expiry.Parameters());
        return await connection.QuerySingleAsync<SessionTableStatistics>(new CommandDefinition(
            command.Text, new DynamicParameters(command.Parameters), cancellationToken: cancellationToken));
    }

    public string Describe() => Target.IsSqlite
        ? Target.SqlitePath
        : new NpgsqlConnectionStringBuilder(ConnectionString) is var b ? $"PostgreSQL database \"{b.Database}\" on {b.Host}:{b.Port}" : "";

    public async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        SqliteConnection.ClearAllPools();
    }
}

/// <summary>A failure to report as one line, exit code 1.</summary>
internal class ToolException(string message) : Exception(message);

/// <summary>Bad usage: reported as one line, exit code 2.</summary>
internal sealed class UsageException(string message) : ToolException(message);
