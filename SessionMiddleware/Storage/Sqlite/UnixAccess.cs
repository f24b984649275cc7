using System.Runtime.InteropServices;
using System.Text;

namespace SessionMiddleware.Storage.Sqlite;

/// <summary>
/// <c>access(2)</c> from the C library: whether this process may write a file, asked without opening it (see
/// <see cref="SqliteDatabasePath"/> for why a file SQLite may hold open must not be opened and closed beside it).
/// </summary>
internal static unsafe class UnixAccess
{
    private const int WriteOk = 2; // W_OK

    private static readonly delegate* unmanaged<byte*, int, int> Access = Resolve();

    /// <summary>
    /// Whether <c>access(path, W_OK)</c> succeeds; true when the C library cannot be reached (then SQLite's own error,
    /// explained where it can be, is the answer).
    /// </summary>
    public static bool CanWrite(string path)
    {
        if (Access == null)
        {
            return true;
        }

        var bytes = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = bytes)
        {
            return Access(p, WriteOk) == 0;
        }
    }

    private static delegate* unmanaged<byte*, int, int> Resolve()
    {
        // glibc's runtime name, then whatever the platform resolves "libc" to (musl, macOS).
        foreach (var name in new[] { "libc.so.6", "libc" })
        {
            if (NativeLibrary.TryLoad(name, out var library) && NativeLibrary.TryGetExport(library, "access", out var export))
            {
                return (delegate* unmanaged<byte*, int, int>)export;
            }
        }

        return null;
    }
}
