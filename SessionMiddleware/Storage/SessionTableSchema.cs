namespace SessionMiddleware.Storage;

/// <summary>One column of an existing table, as a store's catalog query returns it.</summary>
internal sealed class FoundColumn
{
    public string Name { get; set; } = "";

    public string Type { get; set; } = "";

    public long NotNullFlag { get; set; }

    /// <summary>Position in the primary key (1-based), or 0 when not part of it.</summary>
    public long Pk { get; set; }

    public override string ToString() =>
        Pk > 0 ? $"{Name} {Type} PRIMARY KEY" : NotNullFlag != 0 ? $"{Name} {Type} NOT NULL" : $"{Name} {Type}";
}

/// <summary>
/// The shape of the session table that every store creates and checks (the column types are the dialect's),
/// and the errors a store raises about it.
/// </summary>
internal static class SessionTableSchema
{
    /// <summary>The schema version this library writes and expects.</summary>
    public const int Version = 1;

    /// <summary>The table where the schema version of each session table is recorded.</summary>
    public const string VersionTable = "__session_middleware_schema";

    /// <summary>The columns in order; <c>id</c> is the primary key; these three may be null.</summary>
    public static readonly IReadOnlyList<string> ColumnNames = ["id", "user_id", "data", "created_at", "last_access", "version", "ip", "user_agent"];

    private static bool IsNullable(string column) => column is "user_id" or "ip" or "user_agent";

    /// <summary>The expected columns as <c>name TYPE [PRIMARY KEY | NOT NULL]</c>, for error messages.</summary>
    public static IReadOnlyList<string> Describe(IReadOnlyList<(string Name, string Type)> columns) =>
        [.. columns.Select(c => c.Name == "id" ? $"{c.Name} {c.Type} PRIMARY KEY" : IsNullable(c.Name) ? $"{c.Name} {c.Type}" : $"{c.Name} {c.Type} NOT NULL")];

    /// <summary>Same names and types in the same order, and <c>id</c> alone the primary key.</summary>
    public static bool HasExpectedShape(IReadOnlyList<FoundColumn> found, IReadOnlyList<(string Name, string Type)> expected) =>
        found.Count == expected.Count &&
        found.Zip(expected).All(p =>
            string.Equals(p.First.Name, p.Second.Name, StringComparison.Ordinal) &&
            string.Equals(p.First.Type, p.Second.Type, StringComparison.OrdinalIgnoreCase)) &&
        found.Single(c => c.Name == "id").Pk == 1 &&
        found.Count(c => c.Pk > 0) == 1;

    public static SessionStoreSchemaException WrongShape(string tableName, IReadOnlyList<(string Name, string Type)> expected, IReadOnlyList<FoundColumn> found) =>
        new(tableName, Describe(expected), [.. found.Select(c => c.ToString())]);

    public static SessionStoreSchemaException NewerSchema(string tableName, long recordedVersion) =>
        new($"The table \"{tableName}\" has schema version {recordedVersion}, written by a newer version of SessionMiddleware; this version understands schema version {Version}. The table was left untouched.");

    public static InvalidOperationException MissingTable(string tableName, Exception inner) =>
        new($"The session table \"{tableName}\" does not exist. Call 'await app.MigrateServerSideSessionsAsync()' at startup, before the app serves requests.", inner);
}
