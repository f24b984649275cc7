using Npgsql;
using SessionMiddleware.Storage;

namespace SessionMiddleware.PostgreSql;

/// <summary>Checks at startup that the connection string is one Npgsql understands and that it names a server.</summary>
internal sealed class PostgreSqlConnectionStringValidator : ConnectionStringValidator
{
    protected override string DatabaseName => "PostgreSQL";

    protected override string? Check(string connectionString) =>
        string.IsNullOrWhiteSpace(new NpgsqlConnectionStringBuilder(connectionString).Host)
            ? "names no PostgreSQL server: set 'Host=...;Database=...;Username=...;Password=...' (UsePostgreSql(connectionString) or the ConnectionString setting)."
            : null;
}
