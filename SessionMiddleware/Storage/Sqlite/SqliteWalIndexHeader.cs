using System.Reflection;
using System.Runtime.InteropServices;
using Microsoft.Data.Sqlite;

namespace SessionMiddleware.Storage.Sqlite;

/// <summary>
/// The header of SQLite's WAL index (the start of the <c>-shm</c> file), read in the memory SQLite itself maps for the
/// watch connection: every commit on the file, by any connection of any process, writes it (its change counter goes up).
/// Reading it takes no lock and no system call, where <c>PRAGMA data_version</c> begins a read transaction (two
/// <c>fcntl</c> locks, and a re-read of the first page after any commit) on every load.
/// </summary>
/// <remarks>
/// <para>
/// The layout is SQLite's documented file format (https://sqlite.org/walformat.html, "the WAL-index header"): two copies
/// of a 48-byte header at offsets 0 and 48, written second copy first; a reader that finds both equal read a whole header.
/// Bytes 8–11 are <c>iChange</c>, raised by every header write; 12 is <c>isInit</c>; 40–47 are the header's checksum.
/// </para>
/// <para>
/// The memory is SQLite's own mapping of region 0, reached through <c>SQLITE_FCNTL_FILE_POINTER</c> and the file's
/// <c>xShmMap</c> (no file is opened here: closing another descriptor of the <c>-shm</c> file would drop every POSIX lock
/// this process holds on it). It stays mapped, and the file is not truncated by anyone, while the watch connection is
/// open: SQLite keeps its shared "dead man switch" lock on the file meanwhile. So the reader is dropped before the
/// watch connection is closed.
/// </para>
/// </remarks>
internal sealed unsafe class SqliteWalIndexHeader
{
    private const int SqliteOk = 0;
    private const int FileControlFilePointer = 7;   // SQLITE_FCNTL_FILE_POINTER
    private const int HeaderBytes = 48;
    private const int WalIndexPageBytes = 32768;     // SQLite maps the WAL index in regions of 32 KiB

    // sqlite3_io_methods: int iVersion, then function pointers; xShmMap is the 13th (iVersion >= 2).
    private const int ShmMapSlot = 13;

    private static readonly delegate* unmanaged<IntPtr, byte*, int, IntPtr*, int> FileControl = ResolveFileControl();

    private readonly byte* _header;

    private SqliteWalIndexHeader(byte* header) => _header = header;

    /// <summary>
    /// The header of <paramref name="connection"/>'s WAL index, or null when it cannot be read so (not a WAL file, a memory
    /// database, a build of SQLite without <c>sqlite3_file_control</c>): the caller then reads <c>PRAGMA data_version</c>.
    /// </summary>
    /// <param name="connection">An open connection, idle, kept open while the header is read.</param>
    public static SqliteWalIndexHeader? TryOpen(SqliteConnection connection)
    {
        if (FileControl == null || connection.Handle is not { IsInvalid: false } handle)
        {
            return null;
        }

        try
        {
            using var command = connection.CreateCommand();

            // Only a WAL file has a WAL index (asking another file's I/O layer for one would create a -shm file); the
            // first statement maps it.
            command.CommandText = "PRAGMA journal_mode;";
            if (!string.Equals(command.ExecuteScalar() as string, "wal", StringComparison.OrdinalIgnoreCase))
            {
                return null;
            }

            command.CommandText = "PRAGMA data_version;";
            command.ExecuteScalar();
        }
        catch (SqliteException)
        {
            // A lock (the watch does not wait) or an unreadable file: the watch runs PRAGMA data_version, which reports it.
            return null;
        }

        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            IntPtr file;
            var main = "main\0"u8;
            fixed (byte* name = main)
            {
                if (FileControl(handle.DangerousGetHandle(), name, FileControlFilePointer, &file) != SqliteOk || file == IntPtr.Zero)
                {
                    return null;
                }
            }

            var methods = *(IntPtr**)file;
            if (methods == null || *(int*)methods < 2)
            {
                return null;   // an I/O layer without shared memory
            }

            var shmMap = (delegate* unmanaged<IntPtr, int, int, int, void**, int>)methods[ShmMapSlot];
            void* region = null;
            if (shmMap == null || shmMap(file, 0, WalIndexPageBytes, 0, &region) != SqliteOk || region == null)
            {
                return null;
            }

            var header = new SqliteWalIndexHeader((byte*)region);
            return header.Read() is null ? null : header;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// A number that changes with every commit on the file (the header's change counter and checksum); null when a writer
    /// was rewriting the header at that moment (the two copies differed each time) or it is not initialized.
    /// </summary>
    public long? Read()
    {
        Span<byte> first = stackalloc byte[HeaderBytes];
        Span<byte> second = stackalloc byte[HeaderBytes];
        for (var attempt = 0; attempt < 4; attempt++)
        {
            // SQLite writes the second copy, then the first: the first read, then the second.
            new ReadOnlySpan<byte>(_header, HeaderBytes).CopyTo(first);
            Interlocked.MemoryBarrier();
            new ReadOnlySpan<byte>(_header + HeaderBytes, HeaderBytes).CopyTo(second);
            Interlocked.MemoryBarrier();
            if (VersionOf(first, second) is { } version)
            {
                return version;
            }

            if (first[12] == 0)
            {
                return null;
            }
        }

        return null;
    }

    /// <summary>
    /// The version of a header read as its two copies: null when they differ (one was read half-written) or the header
    /// is not initialized (<c>isInit</c> 0).
    /// </summary>
    internal static long? VersionOf(ReadOnlySpan<byte> first, ReadOnlySpan<byte> second)
    {
        if (first.Length < HeaderBytes || !first[..HeaderBytes].SequenceEqual(second[..HeaderBytes]) || first[12] == 0)
        {
            return null;
        }

        // Non-negative, so never the row cache's "untrusted" (-1).
        var change = MemoryMarshal.Read<uint>(first[8..]) & 0x7FFF_FFFFu;
        var checksum = MemoryMarshal.Read<uint>(first[40..]);
        return ((long)change << 32) | checksum;
    }

    /// <summary>
    /// <c>sqlite3_file_control</c> of the SQLite library the provider loaded (SQLitePCLRaw does not wrap it); null when
    /// it cannot be found.
    /// </summary>
    private static delegate* unmanaged<IntPtr, byte*, int, IntPtr*, int> ResolveFileControl()
    {
        try
        {
            var name = SQLitePCL.raw.GetNativeLibraryName();
            if (string.IsNullOrEmpty(name)
                || !(NativeLibrary.TryLoad(name, typeof(SQLitePCL.raw).Assembly, null, out var library) || NativeLibrary.TryLoad(name, out library))
                || !NativeLibrary.TryGetExport(library, "sqlite3_file_control", out var export))
            {
                return null;
            }

            return (delegate* unmanaged<IntPtr, byte*, int, IntPtr*, int>)export;
        }
        catch (Exception ex) when (ex is DllNotFoundException or BadImageFormatException or EntryPointNotFoundException or InvalidOperationException or TargetInvocationException)
        {
            return null;
        }
    }
}
