using Microsoft.Data.Sqlite;

namespace SessionMiddleware.Storage.Sqlite;

/// <summary>
/// Turns SQLite's "unable to open database file" (14) and "attempt to write a readonly database" (8) into an error that
/// names the full path, which of the file-system problems it is, and the fix.
/// </summary>
internal static class SqliteDatabasePath
{
    private const int CantOpen = 14;
    private const int ReadOnly = 8;
    private const string Option = nameof(ServerSideSessionOptions) + "." + nameof(ServerSideSessionOptions.ConnectionString);

    /// <summary>
    /// Throws the clear error when the file system already says SQLite will fail (missing folder, folder or file not
    /// writable): called before the startup migration and the startup check open the database.
    /// </summary>
    public static void ThrowIfUnusable(string connectionString)
    {
        if (Problem(connectionString) is { } problem)
        {
            throw new InvalidOperationException(problem);
        }
    }

    /// <summary>The clear error for <paramref name="error"/>, or <see langword="null"/> when the file system does not explain it.</summary>
    public static InvalidOperationException? Explain(string connectionString, SqliteException error) =>
        error.SqliteErrorCode is CantOpen or ReadOnly && Problem(connectionString) is { } problem
            ? new InvalidOperationException(problem, error)
            : null;

    private static string? Problem(string connectionString)
    {
        var builder = new SqliteConnectionStringBuilder(connectionString);
        var dataSource = builder.DataSource;
        if (string.IsNullOrEmpty(dataSource) || builder.Mode is SqliteOpenMode.Memory or SqliteOpenMode.ReadOnly ||
            dataSource.StartsWith("file:", StringComparison.OrdinalIgnoreCase) || dataSource.Contains('|', StringComparison.Ordinal))
        {
            return null;
        }

        var file = Path.GetFullPath(dataSource);
        var folder = Path.GetDirectoryName(file) ?? file;
        return Diagnose(file, folder, Environment.UserName) is { } problem
            ? $"The SQLite session database \"{file}\" cannot be used: {problem} Or set {Option} to a path in a folder the app may write to."
            : null;
    }

    private static string? Diagnose(string file, string folder, string user)
    {
        if (!Directory.Exists(folder))
        {
            return $"its folder \"{folder}\" does not exist. Create it (for example 'mkdir -p {folder}') and give the app's user ({user}) write access to it.";
        }

        var folderWritable = CanWriteFolder(folder);
        if (!File.Exists(file))
        {
            return folderWritable
                ? null
                : $"the file does not exist and its folder \"{folder}\" is not writable by the app's user ({user}), so SQLite cannot create it. Give that user write access to the folder.";
        }

        if (!CanWriteFile(file))
        {
            return $"the file is read-only for the app's user ({user}). Give that user write access to the file and to its folder \"{folder}\".";
        }

        // With both WAL files already there and writable, SQLite needs nothing new in the folder.
        return folderWritable || (CanWriteFile(file + "-wal") && CanWriteFile(file + "-shm"))
            ? null
            : $"the file is writable but its folder \"{folder}\" is read-only for the app's user ({user}); SQLite in WAL mode creates \"{Path.GetFileName(file)}-wal\" and \"{Path.GetFileName(file)}-shm\" beside the file, so the folder must be writable too. Give that user write access to the folder.";
    }

    private static bool CanWriteFolder(string folder)
    {
        try
        {
            using var probe = new FileStream(
                Path.Combine(folder, $".sessions-write-probe-{Guid.NewGuid():N}"), FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose);
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    // Never by opening the file: on Linux and macOS, closing any descriptor of a file drops every POSIX lock this process
    // holds on it, SQLite's included. A probe of the database (or its -shm) while a connection of this process is open
    // (the pool keeps the migration's) would leave this process unprotected: another process closing its last connection
    // on the file would then take it for the last user, checkpoint and delete the WAL and -shm under this one, whose next
    // commits would go to a deleted WAL. So on Unix the kernel is asked (access(2)); Windows locks per handle.
    private static bool CanWriteFile(string file)
    {
        if (!File.Exists(file))
        {
            return false;
        }

        if (!OperatingSystem.IsWindows())
        {
            return UnixAccess.CanWrite(file);
        }

        try
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
