using System.Diagnostics;

namespace SessionMiddleware.Tests.Infrastructure;

/// <summary>A small tmpfs mounted for one test (the tests run as root, as CI does), to make a real full disk.</summary>
internal sealed class TinyDisk : IDisposable
{
    private TinyDisk(string path) => Path = path;

    public string Path { get; }

    private string Filler => System.IO.Path.Combine(Path, "filler.bin");

    public static TinyDisk Mount(string path, string size)
    {
        Directory.CreateDirectory(path);
        Run("mount", "-t", "tmpfs", "-o", $"size={size}", "tmpfs", path);
        return new TinyDisk(path);
    }

    /// <summary>Fills the disk with a file so that only about <paramref name="bytes"/> stay free.</summary>
    public void FillLeaving(long bytes)
    {
        var free = new DriveInfo(Path).AvailableFreeSpace;
        using var file = new FileStream(Filler, FileMode.Create);
        file.SetLength(0);
        var chunk = new byte[4096];
        for (long written = 0; written < free - bytes; written += chunk.Length)
        {
            file.Write(chunk);
        }
    }

    public void FreeFiller() => File.Delete(Filler);

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Run("umount", "-l", Path);
    }

    /// <summary>Runs a mount-like command; these tests need root, as CI runs them.</summary>
    internal static void Run(string command, params string[] args)
    {
        var start = new ProcessStartInfo(command) { RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{command} {string.Join(' ', args)} failed ({process.ExitCode}): {error}. These tests need root, as CI runs them.");
        }
    }
}
