using System.Buffers;
using System.Security.Cryptography;
using System.Text;

namespace SessionMiddleware.PostgreSql.ChangeFeed;

/// <summary>
/// The notifications the store sends (<c>pg_notify</c>, in the transaction of the change, delivered on commit) and the
/// feed reads: one channel per session table, a compact text payload per change.
/// <list type="bullet">
/// <item><c>e,&lt;key&gt;[,&lt;key&gt;…]</c>: the sessions under these keys ended (at most <see cref="KeysPerNotice"/> keys).</item>
/// <item><c>r,&lt;old key&gt;,&lt;new key&gt;[,&lt;user id&gt;]</c>: a renewal; no user part for a session bound to no user.</item>
/// <item><c>x,&lt;old key&gt;,&lt;new key&gt;</c>: a renewal whose user ID would not fit the payload; the user is unknown, so
/// what was open under the old key ends.</item>
/// </list>
/// Keys are the lower-case hex of the 32-byte SHA-256 keys.
/// </summary>
internal static class PostgreSqlChangeNotice
{
    /// <summary>PostgreSQL refuses a payload of 8000 bytes or more (in the server's encoding); this leaves a margin.</summary>
    public const int MaxPayloadBytes = 7900;

    /// <summary>Keys per end notification: <c>1 + 100 × 65</c> = 6501 bytes.</summary>
    public const int KeysPerNotice = 100;

    private const int KeyBytes = 32;
    private const int KeyHex = KeyBytes * 2;

    /// <summary>
    /// The channel of a session table: its name and <c>_changes</c>, within PostgreSQL's 63 bytes (a long name is cut and
    /// a hash of the whole name added). NOTIFY reaches the listeners of the same database only.
    /// </summary>
    public static string Channel(string tableName)
    {
        const string suffix = "_changes";
        const int max = 63;
        if (tableName.Length + suffix.Length <= max)
        {
            return tableName + suffix;
        }

        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(tableName)))[..8];
        return tableName[..(max - suffix.Length - hash.Length - 1)] + "_" + hash + suffix;
    }

    /// <summary>The notification of one session's end.</summary>
    public static string Ended(byte[] key) => "e," + Convert.ToHexStringLower(key);

    /// <summary>The notification of a renewal (<c>x</c>, the user unknown, when <paramref name="userId"/> would make it too long).</summary>
    public static string Renewed(byte[] oldKey, byte[] newKey, string? userId)
    {
        var keys = Convert.ToHexStringLower(oldKey) + "," + Convert.ToHexStringLower(newKey);
        if (userId is null)
        {
            return "r," + keys;
        }

        return 2 + keys.Length + 1 + Encoding.UTF8.GetByteCount(userId) <= MaxPayloadBytes ? "r," + keys + "," + userId : "x," + keys;
    }

    /// <summary>
    /// Tells <paramref name="listener"/> what <paramref name="payload"/> reports. False when it cannot be read (a newer
    /// version's format, or damage): the caller then checks everything held, as after a gap.
    /// </summary>
    public static bool Dispatch(string payload, ISessionChangeListener listener)
    {
        var text = payload.AsSpan();
        if (text.Length < 2 || text[1] != ',')
        {
            return false;
        }

        var body = text[2..];
        return text[0] switch
        {
            'e' => DispatchEnded(body, listener),
            'r' or 'x' => DispatchRenewed(body, userKnown: text[0] == 'r', listener),
            _ => false,
        };
    }

    private static bool DispatchEnded(ReadOnlySpan<char> keys, ISessionChangeListener listener)
    {
        Span<byte> key = stackalloc byte[KeyBytes];
        foreach (var range in keys.Split(','))
        {
            if (!TryReadKey(keys[range], key))
            {
                return false;
            }

            listener.SessionEnded(key);
        }

        return true;
    }

    private static bool DispatchRenewed(ReadOnlySpan<char> body, bool userKnown, ISessionChangeListener listener)
    {
        Span<byte> oldKey = stackalloc byte[KeyBytes];
        Span<byte> newKey = stackalloc byte[KeyBytes];
        if (body.Length < (2 * KeyHex) + 1 || body[KeyHex] != ',' ||
            !TryReadKey(body[..KeyHex], oldKey) || !TryReadKey(body.Slice(KeyHex + 1, KeyHex), newKey))
        {
            return false;
        }

        var user = body[((2 * KeyHex) + 1)..];
        if (!userKnown)
        {
            // Which user the session now belongs to is not known here: what was open under the old key ends.
            if (!user.IsEmpty)
            {
                return false;
            }

            listener.SessionEnded(oldKey);
        }
        else if (user.IsEmpty)
        {
            listener.SessionRenewed(oldKey, newKey, null);
        }
        else if (user[0] == ',')
        {
            listener.SessionRenewed(oldKey, newKey, user[1..].ToString());
        }
        else
        {
            return false;
        }

        return true;
    }

    private static bool TryReadKey(ReadOnlySpan<char> hex, Span<byte> key) =>
        hex.Length == KeyHex && Convert.FromHexString(hex, key, out _, out var written) == OperationStatus.Done && written == KeyBytes;
}
