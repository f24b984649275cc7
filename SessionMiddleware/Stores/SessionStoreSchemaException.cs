namespace SessionMiddleware;

/// <summary>
/// Thrown by the migration when a table with the session table's name exists with another shape, or was
/// created by a newer version of this library. The table is left untouched.
/// </summary>
public sealed class SessionStoreSchemaException : Exception
{
    /// <summary>Creates the exception with a default message.</summary>
    public SessionStoreSchemaException()
        : this("The session table exists with an unexpected shape.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What is wrong.</param>
    public SessionStoreSchemaException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the exception that caused it.</summary>
    /// <param name="message">What is wrong.</param>
    /// <param name="innerException">The cause.</param>
    public SessionStoreSchemaException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for a table of another shape.</summary>
    /// <param name="tableName">The table's name.</param>
    /// <param name="expectedColumns">The columns the library expects, as <c>name TYPE</c>.</param>
    /// <param name="foundColumns">The columns the table has, as <c>name TYPE</c>.</param>
    public SessionStoreSchemaException(string tableName, IReadOnlyList<string> expectedColumns, IReadOnlyList<string> foundColumns)
        : base(FormatMessage(tableName, expectedColumns, foundColumns))
    {
        TableName = tableName;
        ExpectedColumns = expectedColumns;
        FoundColumns = foundColumns;
    }

    /// <summary>The table's name, when known.</summary>
    public string? TableName { get; }

    /// <summary>The columns the library expects, as <c>name TYPE</c>.</summary>
    public IReadOnlyList<string> ExpectedColumns { get; } = [];

    /// <summary>The columns the existing table has, as <c>name TYPE</c>.</summary>
    public IReadOnlyList<string> FoundColumns { get; } = [];

    private static string FormatMessage(string tableName, IReadOnlyList<string> expected, IReadOnlyList<string> found) =>
        $"The table \"{tableName}\" exists but does not have the shape of a session table, so it was left untouched. " +
        $"Expected columns: ({string.Join(", ", expected)}). Found columns: ({string.Join(", ", found)}). " +
        $"Set ServerSideSessionOptions.TableName to another name, or rename or drop that table yourself.";
}
