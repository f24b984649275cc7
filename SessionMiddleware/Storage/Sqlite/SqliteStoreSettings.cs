namespace SessionMiddleware.Storage.Sqlite;

/// <summary>What the SQLite store uses of <see cref="ServerSideSessionOptions"/>, read once when it is built.</summary>
/// <param name="ConnectionString"><see cref="ServerSideSessionOptions.ConnectionString"/>: the SQLite file.</param>
/// <param name="BusyTimeout"><see cref="ServerSideSessionOptions.BusyTimeout"/>: how long a connection waits for another process's lock.</param>
/// <param name="Table">The table name and the timeouts of expiry.</param>
/// <param name="RowCacheSize"><see cref="ServerSideSessionOptions.RowCacheSize"/>: the most rows kept in memory (0: none).</param>
/// <param name="RowCacheMaxBytes">The most bytes of session data the row cache keeps, whatever the number of rows; a row over a quarter of it is not kept.</param>
/// <param name="MassExpiryMinRows">The fewest expired rows that, when they are also an eighth of the table, make the cleaner list them by key (0: never).</param>
/// <param name="RowCacheReadsDataVersionOnly">The row cache's watch runs <c>PRAGMA data_version</c> even where it could read the WAL index header (tests of that path).</param>
internal sealed record SqliteStoreSettings(
    string ConnectionString,
    TimeSpan BusyTimeout,
    SessionStoreSettings Table,
    int RowCacheSize = Configuration.ServerSideSessionDefaults.RowCacheSize,
    long RowCacheMaxBytes = SqliteSessionStore.RowCacheMaxBytes,
    bool RowCacheReadsDataVersionOnly = false,
    int MassExpiryMinRows = SqliteSessionStore.DefaultMassExpiryMinRows)
{
    /// <summary>The settings of <paramref name="options"/>.</summary>
    public static SqliteStoreSettings From(ServerSideSessionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new(options.ConnectionString, options.BusyTimeout, SessionStoreSettings.From(options), options.RowCacheSize);
    }
}
