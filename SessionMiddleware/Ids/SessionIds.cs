using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;

namespace SessionMiddleware.Ids;

/// <summary>
/// The three forms of a session's identity: the secret ID (32 random bytes, only ever in the protected cookie), the
/// key the store keeps (SHA-256 of the secret ID) and the public ID (lowercase hex of the key, safe to log and show).
/// </summary>
internal static class SessionIds
{
    /// <summary>Length of the secret ID in bytes.</summary>
    public const int SecretIdLength = 32;

    /// <summary>A new secret ID from the cryptographic random number generator.</summary>
    public static byte[] NewSecretId() => RandomNumberGenerator.GetBytes(SecretIdLength);

    /// <summary>The stored key: SHA-256 of the secret ID.</summary>
    public static byte[] ComputeKey(byte[] secretId) => SHA256.HashData(secretId);

    /// <summary>The public handle (<c>ISession.Id</c>): lowercase hex of the stored key. Safe to log and show.</summary>
    public static string ToPublicId(byte[] key) => Convert.ToHexStringLower(key);

    /// <summary>Reads a public ID back into the stored key; false for anything but 64 hex characters.</summary>
    public static bool TryParsePublicId(string publicId, [NotNullWhen(true)] out byte[]? key)
    {
        key = null;
        if (publicId.Length != 2 * SHA256.HashSizeInBytes)
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
}
