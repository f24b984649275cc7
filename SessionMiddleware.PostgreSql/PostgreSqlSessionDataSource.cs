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
        _owned = true;
    }

    public PostgreSqlSessionDataSource(NpgsqlDataSource dataSource)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        DataSource = dataSource;
        _owned = false;
    }

    public NpgsqlDataSource DataSource { get; }

    /// <summary>
    /// A data source for a connection string, with automatic preparation, multiplexing and an application name unless
    /// the string sets them. Multiplexing sends the statements of concurrent requests together over a few connections:
    /// PostgreSQL then spends a fraction of the CPU per statement (see docs/scaling.md); the store keeps no state on a
    /// connection.
    /// </summary>
    public static NpgsqlDataSource Create(string connectionString)
    {
        var builder = new NpgsqlDataSourceBuilder(connectionString);
        var settings = builder.ConnectionStringBuilder;
        // Whether the string sets it, not whether it is 0: "Max Auto Prepare=0" (PgBouncer transaction pooling) must stay 0.
        if (!Sets(connectionString, nameof(NpgsqlConnectionStringBuilder.MaxAutoPrepare)))
        {
            settings.MaxAutoPrepare = DefaultMaxAutoPrepare;
        }

        if (!Sets(connectionString, nameof(NpgsqlConnectionStringBuilder.Multiplexing)))
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

    public ValueTask DisposeAsync() => _owned ? DataSource.DisposeAsync() : ValueTask.CompletedTask;

    public void Dispose()
    {
        if (_owned)
        {
            DataSource.Dispose();
        }
    }
}
