using System.Text.RegularExpressions;

namespace SessionMiddleware.Storage;

/// <summary>One column of the session table: its name and its type as the dialect's catalog reports it.</summary>
/// <param name="Name">The column's name.</param>
/// <param name="Type">The column's type, for example <c>BLOB</c> (SQLite) or <c>bytea</c> (PostgreSQL).</param>
internal sealed record SessionColumn(string Name, string Type);

/// <summary>One column of an existing table, as <see cref="SessionSqlDialect.SelectColumns"/> returns it.</summary>
internal sealed class CatalogColumn
{
    /// <summary>The column's name.</summary>
    public string Name { get; set; } = "";

    /// <summary>The column's declared type.</summary>
    public string Type { get; set; } = "";

    /// <summary>Non-zero when the column is <c>NOT NULL</c>.</summary>
    public long NotNullFlag { get; set; }

    /// <summary>Position in the primary key (1-based), or 0 when not part of it.</summary>
    public long Pk { get; set; }

    /// <summary>The column as <c>name TYPE [PRIMARY KEY | NOT NULL]</c>, for error messages.</summary>
    /// <returns>The description.</returns>
    public override string ToString() =>
        Pk > 0 ? $"{Name} {Type} PRIMARY KEY" : NotNullFlag != 0 ? $"{Name} {Type} NOT NULL" : $"{Name} {Type}";
}

/// <summary>
/// The shape of the session table that every store creates and checks (the column types are the dialect's), and
/// the errors a store raises about it.
/// </summary>
internal static partial class SessionTableSchema
{
    /// <summary>
    /// The schema version this library writes and expects (2: every row has its own <c>expires_at</c>; 3: SQLite keeps
    /// a table of recent ends and renewals beside the session table, for the other processes on the file; 4: each row
    /// records its sign-in: when, the identity provider's issuer, session and subject, and a hash of the credential stamp).
    /// </summary>
    public const int Version = 4;

    /// <summary>The table where the schema version of each session table is recorded.</summary>
    public const string VersionTable = "__session_middleware_schema";

    /// <summary>The columns in order; <c>id</c> is the primary key; <c>user_id</c>, <c>ip</c>, <c>user_agent</c> and the sign-in columns may be null.</summary>
    public static IReadOnlyList<string> ColumnNames { get; } =
        ["id", "user_id", "data", "created_at", "last_access", "version", "ip", "user_agent", "expires_at", "signed_in_at", "idp_issuer", "idp_sid", "idp_subject", "credential_stamp"];

    /// <summary>The columns schema 4 added, all nullable: what a row records about its sign-in (<see cref="SessionSignIn"/>).</summary>
    public static IReadOnlyList<string> SignInColumnNames { get; } = ["signed_in_at", "idp_issuer", "idp_sid", "idp_subject", "credential_stamp"];

    /// <summary>Whether <paramref name="tableName"/> is a name the library accepts (<c>^[A-Za-z_][A-Za-z0-9_]{0,62}$</c>), so it can be quoted into SQL.</summary>
    /// <param name="tableName">The name to check.</param>
    /// <returns><see langword="true"/> when the name is allowed.</returns>
    public static bool IsValidTableName(string? tableName) => tableName is not null && TableNamePattern().IsMatch(tableName);

    /// <summary>Whether a column may be null.</summary>
    /// <param name="column">One of <see cref="ColumnNames"/>.</param>
    /// <returns><see langword="true"/> for <c>user_id</c>, <c>ip</c>, <c>user_agent</c> and the sign-in columns.</returns>
    public static bool IsNullable(string column) => column is "user_id" or "ip" or "user_agent" || SignInColumnNames.Contains(column);

    /// <summary>Same names and types in the same order, and <c>id</c> alone the primary key.</summary>
    /// <param name="found">The existing table's columns.</param>
    /// <param name="expected">The dialect's columns.</param>
    /// <returns><see langword="true"/> when the existing table is a session table.</returns>
    public static bool HasExpectedShape(IReadOnlyList<CatalogColumn> found, IReadOnlyList<SessionColumn> expected)
    {
        ArgumentNullException.ThrowIfNull(found);
        ArgumentNullException.ThrowIfNull(expected);
        return found.Count == expected.Count &&
            found.Zip(expected).All(p =>
                string.Equals(p.First.Name, p.Second.Name, StringComparison.Ordinal) &&
                string.Equals(p.First.Type, p.Second.Type, StringComparison.OrdinalIgnoreCase)) &&
            found.Single(c => c.Name == "id").Pk == 1 &&
            found.Count(c => c.Pk > 0) == 1;
    }

    /// <summary>The error for a table of another shape, naming the expected and the found columns.</summary>
    /// <param name="tableName">The table's name.</param>
    /// <param name="expected">The dialect's columns.</param>
    /// <param name="found">The existing table's columns.</param>
    /// <returns>The exception to throw.</returns>
    public static SessionStoreSchemaException WrongShape(string tableName, IReadOnlyList<SessionColumn> expected, IReadOnlyList<CatalogColumn> found)
    {
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentNullException.ThrowIfNull(found);
        return new(tableName, Describe(expected), [.. found.Select(c => c.ToString())]);
    }

    /// <summary>The error for a table recorded at a newer schema version than this library knows.</summary>
    /// <param name="tableName">The table's name.</param>
    /// <param name="recordedVersion">The version recorded in <see cref="VersionTable"/>.</param>
    /// <returns>The exception to throw.</returns>
    public static SessionStoreSchemaException NewerSchema(string tableName, long recordedVersion) =>
        new($"The table \"{tableName}\" has schema version {recordedVersion}, written by a newer version of SessionMiddleware; this version understands schema version {Version}. The table was left untouched.");

    /// <summary>The error for a statement that found no session table: it names the migration call.</summary>
    /// <param name="tableName">The table's name.</param>
    /// <param name="inner">The driver's error.</param>
    /// <returns>The exception to throw.</returns>
    public static InvalidOperationException MissingTable(string tableName, Exception inner) =>
        new(MissingTableMessage(tableName), inner);

    /// <summary>The error for a startup check that found no session table: it names the migration call and the tool.</summary>
    /// <param name="tableName">The table's name.</param>
    /// <returns>The exception to throw.</returns>
    public static InvalidOperationException MissingTable(string tableName) => new(MissingTableMessage(tableName));

    /// <summary>The error for a session table recorded at an older schema version than this library's, or not recorded at all.</summary>
    /// <param name="tableName">The table's name.</param>
    /// <param name="recordedVersion">The version recorded in <see cref="VersionTable"/>, or <see langword="null"/> when none is.</param>
    /// <returns>The exception to throw.</returns>
    public static SessionStoreSchemaException NotMigrated(string tableName, long? recordedVersion) =>
        new($"The session table \"{tableName}\" " +
            (recordedVersion is { } v ? $"has schema version {v}; this version of SessionMiddleware needs schema version {Version}. " : $"has no schema version recorded in {VersionTable}. ") +
            MigrateHint);

    private const string MigrateHint =
        "Call 'await app.MigrateServerSideSessionsAsync()' after 'builder.Build()' and before 'app.Run()', or run 'dotnet sessions migrate' before starting the app.";

    private static string MissingTableMessage(string tableName) => $"The session table \"{tableName}\" does not exist. {MigrateHint}";

    private static List<string> Describe(IReadOnlyList<SessionColumn> columns) =>
        [.. columns.Select(c => c.Name == "id" ? $"{c.Name} {c.Type} PRIMARY KEY" : IsNullable(c.Name) ? $"{c.Name} {c.Type}" : $"{c.Name} {c.Type} NOT NULL")];

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]{0,62}$", RegexOptions.CultureInvariant)]
    private static partial Regex TableNamePattern();
}
