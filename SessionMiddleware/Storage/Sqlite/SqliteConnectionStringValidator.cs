using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;

namespace SessionMiddleware.Storage.Sqlite;

/// <summary>Checks at startup that the connection string is one SQLite understands.</summary>
internal sealed class SqliteConnectionStringValidator : IValidateOptions<ServerSideSessionOptions>
{
    public ValidateOptionsResult Validate(string? name, ServerSideSessionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            return ValidateOptionsResult.Skip; // reported by the general validator
        }

        try
        {
            var builder = new SqliteConnectionStringBuilder(options.ConnectionString);
            if (string.IsNullOrWhiteSpace(builder.DataSource))
            {
                return ValidateOptionsResult.Fail($"{nameof(ServerSideSessionOptions)}.{nameof(options.ConnectionString)} names no SQLite file: set 'Data Source=path/to/sessions.db'.");
            }

            if (builder.DataSource == ":memory:" || (builder.Mode == SqliteOpenMode.Memory && builder.Cache != SqliteCacheMode.Shared))
            {
                return ValidateOptionsResult.Fail($"{nameof(ServerSideSessionOptions)}.{nameof(options.ConnectionString)} names a private in-memory database: every pooled connection would see its own empty database. Use a file ('Data Source=sessions.db').");
            }

            return ValidateOptionsResult.Success;
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or InvalidOperationException)
        {
            return ValidateOptionsResult.Fail($"{nameof(ServerSideSessionOptions)}.{nameof(options.ConnectionString)} is not a valid SQLite connection string: {ex.Message}");
        }
    }
}
