namespace SessionMiddleware.Tests.Infrastructure;

/// <summary>Where the repository's files are, for tests that read or build them (the README, the samples).</summary>
internal static class RepositoryPaths
{
    /// <summary>The folder of SessionMiddleware.sln, found above the test assembly.</summary>
    /// <returns>The repository's root folder.</returns>
    public static string Root()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "SessionMiddleware.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("SessionMiddleware.sln not found above " + AppContext.BaseDirectory);
    }
}
