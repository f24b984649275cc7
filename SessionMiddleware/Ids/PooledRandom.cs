using System.Security.Cryptography;

namespace SessionMiddleware.Ids;

/// <summary>
/// Cryptographically random bytes for session IDs and ticket references, drawn from a small per-thread pool that the
/// operating system's generator (<see cref="RandomNumberGenerator"/>) refills.
/// </summary>
/// <remarks>
/// <para>
/// Each call into the generator costs the same for 32 bytes as for 1,024 (on Linux, OpenSSL's <c>RAND_bytes</c> with a
/// lock and a <c>getpid</c> system call): 3.3 µs on the benchmark machine, against 0.02 µs per ID from the pool. A sign-in
/// drew twice per request, a new session once.
/// </para>
/// <para>
/// The bytes are the generator's own, handed out once each: every handed-out slice is zeroed in the pool, so the pool
/// never holds an ID already issued. It holds at most 1 KB of bytes not yet issued per thread, no more exposed to a
/// reader of the process's memory than the Data Protection keys the same process holds.
/// </para>
/// </remarks>
internal static class PooledRandom
{
    /// <summary>Bytes drawn from the generator at once, per thread.</summary>
    public const int PoolBytes = 1024;

    /// <summary>Requests longer than this go to the generator directly.</summary>
    public const int MaxPooledRequest = 64;

    [ThreadStatic]
    private static byte[]? t_pool;

    [ThreadStatic]
    private static int t_next;

    /// <summary>This thread's pool as it is now (tests: what was handed out must read as zeros).</summary>
    internal static ReadOnlySpan<byte> PoolOfThisThread => t_pool;

    /// <summary>Where this thread's next draw starts in its pool (tests).</summary>
    internal static int NextOfThisThread => t_next;

    /// <summary>Fills <paramref name="destination"/> with cryptographically random bytes.</summary>
    public static void Fill(Span<byte> destination)
    {
        if (destination.Length > MaxPooledRequest)
        {
            RandomNumberGenerator.Fill(destination);
            return;
        }

        var pool = t_pool;
        var next = t_next;
        if (pool is null || next + destination.Length > PoolBytes)
        {
            pool ??= t_pool = new byte[PoolBytes];
            RandomNumberGenerator.Fill(pool);
            next = 0;
        }

        var slice = pool.AsSpan(next, destination.Length);
        slice.CopyTo(destination);
        CryptographicOperations.ZeroMemory(slice);
        t_next = next + destination.Length;
    }
}
