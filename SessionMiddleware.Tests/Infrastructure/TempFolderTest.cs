namespace SessionMiddleware.Tests.Infrastructure;

/// <summary>Base of fixtures whose tests each get a fresh temp folder (SQLite files, key rings), deleted afterwards.</summary>
public abstract class TempFolderTest
{
    private TempFolder? _folder;

    /// <summary>This test's folder.</summary>
    private protected TempFolder Folder => _folder ?? throw new InvalidOperationException("No test is running.");

    [SetUp]
    public void CreateTempFolder() => _folder = new TempFolder();

    [TearDown]
    public void DeleteTempFolder()
    {
        _folder?.Dispose();
        _folder = null;
    }
}
