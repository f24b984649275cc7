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

        return builder.Build();
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
