using Microsoft.Extensions.Options;
using Npgsql;

namespace SessionMiddleware.PostgreSql;

/// <summary>
/// The one <see cref="NpgsqlDataSource"/> (connection pool) of the session store: built from
/// <see cref="ServerSideSessionOptions.ConnectionString"/> and disposed with the container, or given by the app
/// and left to it.
/// </summary>
internal sealed class PostgreSqlSessionDataSource : IAsyncDisposable, IDisposable
{
    /// <summary>How many statements each connection prepares automatically (the store runs a dozen, again and again).</summary>
    internal const int DefaultMaxAutoPrepare = 20;

    private readonly bool _owned;

    public PostgreSqlSessionDataSource(IOptions<ServerSideSessionOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        DataSource = Create(options.Value.ConnectionString);
        WriterDataSource = new NpgsqlConnectionStringBuilder(DataSource.ConnectionString).Multiplexing
            ? Create(options.Value.ConnectionString, multiplexing: false)
            : DataSource;
        _owned = true;
    }

    public PostgreSqlSessionDataSource(NpgsqlDataSource dataSource)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        DataSource = dataSource;
        WriterDataSource = dataSource;
        _owned = false;
    }

    /// <summary>The loads, the cleaner, the listings and the migration.</summary>
    public NpgsqlDataSource DataSource { get; }

    /// <summary>
    /// The group-commit writer's connection (<see cref="PostgreSqlWriteQueue"/>). Without multiplexing when the store's
    /// own data source multiplexes: the writer already sends its writes together as one batch, and multiplexing's queue
    /// and hand-offs only cost it CPU and time (A/B with <c>build/bench</c>, docs/scaling.md). The same data source when
    /// the app gave one, or when the connection string turns multiplexing off.
    /// </summary>
    public NpgsqlDataSource WriterDataSource { get; }

    /// <summary>
    /// A data source for a connection string, with automatic preparation, multiplexing and an application name unless
    /// the string sets them. Multiplexing sends the statements of concurrent requests together over a few connections:
    /// PostgreSQL then spends a fraction of the CPU per statement (see docs/scaling.md); the store keeps no state on a
    /// connection.
    /// </summary>
    public static NpgsqlDataSource Create(string connectionString) => Create(connectionString, multiplexing: null);

    /// <param name="connectionString">The app's connection string.</param>
    /// <param name="multiplexing">Forces multiplexing on or off; <see langword="null"/>: on unless the string sets it.</param>
    private static NpgsqlDataSource Create(string connectionString, bool? multiplexing)
    {
        var builder = new NpgsqlDataSourceBuilder(connectionString);
        var settings = builder.ConnectionStringBuilder;
        // Whether the string sets it, not whether it is 0: "Max Auto Prepare=0" (PgBouncer transaction pooling) must stay 0.
        if (!Sets(connectionString, nameof(NpgsqlConnectionStringBuilder.MaxAutoPrepare)))
        {
            settings.MaxAutoPrepare = DefaultMaxAutoPrepare;
        }

        if (multiplexing is { } forced)
        {
            settings.Multiplexing = forced;
        }
        else if (!Sets(connectionString, nameof(NpgsqlConnectionStringBuilder.Multiplexing)))
        {
            settings.Multiplexing = true;
        }

        if (string.IsNullOrEmpty(settings.ApplicationName))
        {
            settings.ApplicationName = "SessionMiddleware";
        }

        if (settings.MaxAutoPrepare > 0)
        {
            builder.UsePhysicalConnectionInitializer(UseGenericPlans, UseGenericPlansAsync);
        }

        return builder.Build();
    }

    /// <summary>
    /// Set on each of the store's own connections when its statements are prepared: PostgreSQL then plans each of them
    /// once per connection. By default it plans a statement again on every run while it judges that run's own plan
    /// cheaper than the general one, and for the group load (<c>WHERE id = ANY($1)</c>, a different number of keys each
    /// time) it did so on most runs: planning cost it more than running the statement (measured with
    /// <c>pg_stat_statements</c> under <c>build/bench</c>, docs/scaling.md). The store's statements are key and index
    /// lookups whose best plan does not depend on the values; a plan is made again when the table's statistics change.
    /// Not set with <c>Max Auto Prepare=0</c> (PgBouncer's transaction pooling, where a session setting would reach other
    /// clients), nor on a data source the app gives.
    /// </summary>
    internal const string GenericPlans = "SET plan_cache_mode = force_generic_plan";

    private static void UseGenericPlans(NpgsqlConnection connection)
    {
        // plan_cache_mode exists from PostgreSQL 12.
        if (connection.PostgreSqlVersion.Major >= 12)
        {
            using var command = new NpgsqlCommand(GenericPlans, connection);
            command.ExecuteNonQuery();
        }
    }

    private static async Task UseGenericPlansAsync(NpgsqlConnection connection)
    {
        if (connection.PostgreSqlVersion.Major >= 12)
        {
            var command = new NpgsqlCommand(GenericPlans, connection);
            await using (command.ConfigureAwait(false))
            {
                await command.ExecuteNonQueryAsync().ConfigureAwait(false);
            }
        }
    }

    // Npgsql's builder knows every keyword (its ContainsKey is true for all of them): read the keys the string itself has.
    private static bool Sets(string connectionString, string keyword) =>
        new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString }.Keys.Cast<string>()
            .Any(k => string.Equals(k.Replace(" ", string.Empty, StringComparison.Ordinal), keyword, StringComparison.OrdinalIgnoreCase));

    public async ValueTask DisposeAsync()
    {
        if (_owned)
        {
            await DataSource.DisposeAsync().ConfigureAwait(false);
            if (!ReferenceEquals(WriterDataSource, DataSource))
            {
                await WriterDataSource.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    public void Dispose()
    {
        if (_owned)
        {
            DataSource.Dispose();
            if (!ReferenceEquals(WriterDataSource, DataSource))
            {
                WriterDataSource.Dispose();
            }
        }
    }
}
