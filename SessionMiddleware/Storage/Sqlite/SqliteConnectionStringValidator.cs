using Microsoft.Data.Sqlite;

namespace SessionMiddleware.Storage.Sqlite;

/// <summary>Checks at startup that the connection string is one SQLite understands and names a file.</summary>
internal sealed class SqliteConnectionStringValidator : ConnectionStringValidator
{
    protected override string DatabaseName => "SQLite";

    protected override string? Check(string connectionString)
    {
        var builder = new SqliteConnectionStringBuilder(connectionString);
        if (string.IsNullOrWhiteSpace(builder.DataSource))
        {
            return "names no SQLite file: set 'Data Source=path/to/sessions.db'.";
        }

        if (builder.DataSource == ":memory:" || (builder.Mode == SqliteOpenMode.Memory && builder.Cache != SqliteCacheMode.Shared))
        {
            return "names a private in-memory database: every pooled connection would see its own empty database. Use a file ('Data Source=sessions.db').";
        }

        return null;
    }
}
