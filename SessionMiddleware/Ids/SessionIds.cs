using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;

namespace SessionMiddleware.Ids;

/// <summary>
/// The three forms of a session's identity: the secret ID (only ever in the protected cookie or header), the key the
/// store keeps (derived from the secret ID by SHA-256) and the public ID (lowercase hex of the key, safe to log and show).
/// </summary>
/// <remarks>
/// <para>
/// A secret ID is the time it was issued (6 bytes, big-endian milliseconds since the Unix epoch) followed by 32 random
/// bytes. Its key is those 6 time bytes followed by the first 26 bytes of the SHA-256 of the whole secret ID, so keys sort
/// in the order they were issued. A store inserts each new row next to the last one instead of on a random page of its
/// primary key (a SQLite sign-up writes a page or two per group commit, not one per session), and rows created together
/// expire together, in one stretch of the table the cleaner empties page after page.
/// </para>
/// <para>
/// The secret stays 256 random bits and the key keeps 208 bits of SHA-256; only the issue time, which the row's
/// <c>created_at</c> already holds, is readable in the key and the public ID. A secret ID of 32 bytes (issued before
/// this format, still in browsers' cookies) has the whole SHA-256 as its key, as it always had, so those sessions
/// load without a migration.
/// </para>
/// </remarks>
internal static class SessionIds
{
    /// <summary>Random bytes in a secret ID.</summary>
    public const int RandomBytes = 32;

    /// <summary>Bytes of issue time at the start of a secret ID and of its key.</summary>
    public const int TimeBytes = 6;

    /// <summary>Length of a secret ID in bytes: the issue time and the random bytes.</summary>
    public const int SecretIdLength = TimeBytes + RandomBytes;

    /// <summary>Length of a secret ID issued before the time prefix: 32 random bytes, keyed by their whole SHA-256.</summary>
    public const int UnorderedSecretIdLength = RandomBytes;

    /// <summary>Length of a key in bytes (either kind of secret ID).</summary>
    public const int KeyLength = 32;

    /// <summary>A new secret ID issued at <paramref name="now"/>: its time, then random bytes from the cryptographic random number generator (<see cref="PooledRandom"/>).</summary>
    public static byte[] NewSecretId(DateTimeOffset now)
    {
        var secretId = new byte[SecretIdLength];
        WriteTime(secretId, now);
        PooledRandom.Fill(secretId.AsSpan(TimeBytes));
        return secretId;
    }

    /// <summary>Whether <paramref name="length"/> is that of a secret ID this library issues or has issued.</summary>
    public static bool IsSecretIdLength(int length) => length is SecretIdLength or UnorderedSecretIdLength;

    /// <summary>
    /// The stored key: the secret ID's issue time and the first 26 bytes of its SHA-256; for a 32-byte secret ID issued
    /// before the time prefix, its whole SHA-256.
    /// </summary>
    public static byte[] ComputeKey(byte[] secretId)
    {
        if (secretId.Length != SecretIdLength)
        {
            return SHA256.HashData(secretId);
        }

        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(secretId, hash);
        var key = new byte[KeyLength];
        secretId.AsSpan(0, TimeBytes).CopyTo(key);
        hash[..(KeyLength - TimeBytes)].CopyTo(key.AsSpan(TimeBytes));
        return key;
    }

    /// <summary>
    /// A hash of a key for in-memory tables and lock stripes: its last 4 bytes, which are SHA-256 output in every key. Never
    /// its first bytes: keys issued together share their time prefix, and would all land in one bucket or stripe.
    /// </summary>
    public static int HashOf(ReadOnlySpan<byte> key) =>
        key.Length >= sizeof(int) ? BinaryPrimitives.ReadInt32LittleEndian(key[^sizeof(int)..]) : key.Length;

    /// <summary>The public handle (<c>ISession.Id</c>): lowercase hex of the stored key. Safe to log and show.</summary>
    public static string ToPublicId(byte[] key) => Convert.ToHexStringLower(key);

    /// <summary>Reads a public ID back into the stored key; false for anything but 64 hex characters.</summary>
    public static bool TryParsePublicId(string publicId, [NotNullWhen(true)] out byte[]? key)
    {
        key = null;
        if (publicId.Length != 2 * KeyLength)
        {
            return false;
        }

        try
        {
            key = Convert.FromHexString(publicId);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    // Milliseconds since the Unix epoch in the first TimeBytes bytes, big-endian (so keys compare as times). 48 bits hold
    // every DateTimeOffset up to year 9999; a clock before 1970 writes 0 (it only loses the order, never the ID).
    private static void WriteTime(Span<byte> destination, DateTimeOffset now)
    {
        var milliseconds = Math.Max(now.ToUnixTimeMilliseconds(), 0);
        Span<byte> eight = stackalloc byte[sizeof(long)];
        BinaryPrimitives.WriteInt64BigEndian(eight, milliseconds);
        eight[(sizeof(long) - TimeBytes)..].CopyTo(destination);
    }
}
