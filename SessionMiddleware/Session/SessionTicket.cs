using System.Buffers.Binary;
using System.Text;

namespace SessionMiddleware.Session;

/// <summary>
/// One authentication scheme's sign-in, kept in the session beside (not among) its data: the reference the
/// authentication cookie carries, how long a remembered sign-in keeps the session, and the ticket, protected.
/// Encoded as <c>[id length: 1 byte] [ASCII id] [keep until: 8 bytes, Unix seconds, 0 = not remembered] [protected ticket]</c>.
/// </summary>
internal sealed record SessionTicket(string Id, DateTimeOffset? KeepUntil, byte[] ProtectedTicket)
{
    public byte[] Encode()
    {
        var id = Encoding.ASCII.GetBytes(Id);
        var bytes = new byte[1 + id.Length + 8 + ProtectedTicket.Length];
        bytes[0] = checked((byte)id.Length);
        id.CopyTo(bytes, 1);
        BinaryPrimitives.WriteInt64BigEndian(bytes.AsSpan(1 + id.Length), KeepUntil?.ToUnixTimeSeconds() ?? 0);
        ProtectedTicket.CopyTo(bytes, 1 + id.Length + 8);
        return bytes;
    }

    public static SessionTicket? Decode(byte[] bytes)
    {
        if (bytes.Length < 1 || bytes.Length < 1 + bytes[0] + 8)
        {
            return null;
        }

        var idLength = bytes[0];
        var keepUntil = BinaryPrimitives.ReadInt64BigEndian(bytes.AsSpan(1 + idLength, 8));
        return new SessionTicket(
            Encoding.ASCII.GetString(bytes, 1, idLength),
            keepUntil > 0 ? DateTimeOffset.FromUnixTimeSeconds(keepUntil) : null,
            bytes[(1 + idLength + 8)..]);
    }
}
