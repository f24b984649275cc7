namespace SessionMiddleware.Storage.Sqlite;

/// <summary>Told the size of each group commit the SQLite store's writer makes (the diagnostics record it).</summary>
internal interface IWriteBatchObserver
{
    /// <summary>A transaction committed <paramref name="size"/> writes.</summary>
    void WriteBatch(int size);
}
