using Microsoft.Extensions.Options;
using Npgsql;

namespace SessionMiddleware.PostgreSql;

/// <summary>Checks at startup that the connection string is one Npgsql understands and that it names a server.</summary>
internal sealed class PostgreSqlConnectionStringValidator : IValidateOptions<ServerSideSessionOptions>
{
    private const string Option = nameof(ServerSideSessionOptions) + "." + nameof(ServerSideSessionOptions.ConnectionString);

    public ValidateOptionsResult Validate(string? name, ServerSideSessionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            return ValidateOptionsResult.Skip; // reported by the general validator
        }

        try
        {
            var builder = new NpgsqlConnectionStringBuilder(options.ConnectionString);
            if (string.IsNullOrWhiteSpace(builder.Host))
            {
                return ValidateOptionsResult.Fail($"{Option} names no PostgreSQL server: set 'Host=...;Database=...;Username=...;Password=...' (UsePostgreSql(connectionString) or the ConnectionString setting).");
            }

            return ValidateOptionsResult.Success;
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or InvalidOperationException or KeyNotFoundException)
        {
            return ValidateOptionsResult.Fail($"{Option} is not a valid PostgreSQL connection string: {ex.Message}");
        }
    }
}
