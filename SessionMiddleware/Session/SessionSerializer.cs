using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace SessionMiddleware.Session;

/// <summary>
/// The versioned binary format of a session's data:
/// <c>[format version: 1 byte] [count: varint] ([key length: varint] [UTF-8 key] [value length: varint] [value])*</c>,
/// and in format 2 the same list again for the sign-in tickets (scheme, encoded <see cref="SessionTicket"/>). Format 1
/// is written while the session holds no ticket, so that earlier versions of the library still read it. An unknown
/// version or corrupt bytes are reported, never thrown at the request. Format versions stay below
/// <see cref="SessionDataProtector.SealedFormat"/>, the first byte of a sealed blob.
/// </summary>
internal static class SessionSerializer
{
    public const byte FormatVersion = 1;

    /// <summary>The format with a tickets section.</summary>
    public const byte FormatVersionWithTickets = 2;

    /// <summary>The size of the header of an empty session: the version byte and a zero count.</summary>
    public const int EmptySize = 2;

    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The serialized size of a session with <paramref name="count"/> entries, besides the entries themselves.</summary>
    public static int HeaderSize(int count) => 1 + VarIntSize((uint)count);

    /// <summary>The serialized size of one entry.</summary>
    public static int EntrySize(string key, int valueLength)
    {
        var keyBytes = Utf8.GetByteCount(key);
        return VarIntSize((uint)keyBytes) + keyBytes + VarIntSize((uint)valueLength) + valueLength;
    }

    /// <param name="entries">The session's data.</param>
    /// <param name="size">The serialized size of <paramref name="entries"/> alone, as tracked by the session.</param>
    /// <param name="tickets">The sign-in tickets by scheme; none writes format 1.</param>
    public static byte[] Serialize(IReadOnlyDictionary<string, byte[]> entries, int size, IReadOnlyDictionary<string, byte[]>? tickets = null)
    {
        var withTickets = tickets is { Count: > 0 };
        var total = size;
        if (withTickets)
        {
            total += VarIntSize((uint)tickets!.Count);
            foreach (var (scheme, ticket) in tickets)
            {
                total += EntrySize(scheme, ticket.Length);
            }
        }

        var buffer = new byte[total];
        var span = buffer.AsSpan();
        span[0] = withTickets ? FormatVersionWithTickets : FormatVersion;
        var offset = 1 + WriteEntries(span[1..], entries);
        if (offset != size)
        {
            throw new InvalidOperationException($"Serialized session size {offset} differs from the computed size {size}.");
        }

        if (withTickets)
        {
            offset += WriteEntries(span[offset..], tickets!);
        }

        return buffer;
    }

    /// <summary>Reads serialized data; returns an error description instead of throwing on bad input.</summary>
    public static bool TryDeserialize(ReadOnlySpan<byte> data, out Dictionary<string, byte[]> entries, out int size, out string? error) =>
        TryDeserialize(data, out entries, out size, out _, out error);

    /// <summary>Reads serialized data and its tickets (empty in format 1); returns an error description instead of throwing on bad input.</summary>
    public static bool TryDeserialize(
        ReadOnlySpan<byte> data, out Dictionary<string, byte[]> entries, out int size, out Dictionary<string, byte[]> tickets, out string? error)
    {
        tickets = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        if (TryRead(data, out entries, out size, tickets, out error))
        {
            return true;
        }

        entries = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        tickets.Clear();
        size = EmptySize;
        return false;
    }

    private static int WriteEntries(Span<byte> span, IReadOnlyDictionary<string, byte[]> entries)
    {
        var offset = WriteVarInt(span, (uint)entries.Count);
        foreach (var (key, value) in entries)
        {
            var keyBytes = Utf8.GetByteCount(key);
            offset += WriteVarInt(span[offset..], (uint)keyBytes);
            offset += Utf8.GetBytes(key, span[offset..]);
            offset += WriteVarInt(span[offset..], (uint)value.Length);
            value.CopyTo(span[offset..]);
            offset += value.Length;
        }

        return offset;
    }

    private static bool TryRead(ReadOnlySpan<byte> data, out Dictionary<string, byte[]> entries, out int size, Dictionary<string, byte[]> tickets, out string? error)
    {
        entries = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        size = EmptySize;
        error = null;
        if (data.IsEmpty)
        {
            return true;
        }

        if (data[0] is not (FormatVersion or FormatVersionWithTickets))
        {
            error = $"unknown format version {data[0]}";
            return false;
        }

        var offset = 1;
        if (!TryReadEntries(data, ref offset, entries, out error))
        {
            return false;
        }

        size = offset;
        if (data[0] == FormatVersionWithTickets && !TryReadEntries(data, ref offset, tickets, out error))
        {
            return false;
        }

        if (offset != data.Length)
        {
            error = "trailing bytes";
            return false;
        }

        return true;
    }

    private static bool TryReadEntries(ReadOnlySpan<byte> data, ref int offset, Dictionary<string, byte[]> entries, out string? error)
    {
        error = null;
        if (!TryReadVarInt(data, ref offset, out var count) || count > (uint)data.Length)
        {
            error = "corrupt entry count";
            return false;
        }

        for (var i = 0u; i < count; i++)
        {
            if (!TryReadVarInt(data, ref offset, out var keyLength) || keyLength > (uint)(data.Length - offset))
            {
                error = "corrupt key";
                return false;
            }

            string key;
            try
            {
                key = Utf8.GetString(data.Slice(offset, (int)keyLength));
            }
            catch (DecoderFallbackException)
            {
                error = "key is not UTF-8";
                return false;
            }

            offset += (int)keyLength;
            if (!TryReadVarInt(data, ref offset, out var valueLength) || valueLength > (uint)(data.Length - offset))
            {
                error = "corrupt value";
                return false;
            }

            if (!entries.TryAdd(key, data.Slice(offset, (int)valueLength).ToArray()))
            {
                error = "duplicate key";
                return false;
            }

            offset += (int)valueLength;
        }

        return true;
    }

    internal static int VarIntSize(uint value)
    {
        var size = 1;
        while (value >= 0x80)
        {
            value >>= 7;
            size++;
        }

        return size;
    }

    private static int WriteVarInt(Span<byte> destination, uint value)
    {
        var i = 0;
        while (value >= 0x80)
        {
            destination[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        destination[i++] = (byte)value;
        return i;
    }

    private static bool TryReadVarInt(ReadOnlySpan<byte> data, ref int offset, out uint value)
    {
        value = 0;
        for (var shift = 0; shift < 35; shift += 7)
        {
            if (offset >= data.Length)
            {
                return false;
            }

            var b = data[offset++];
            value |= (uint)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return shift < 28 || b <= 0x0F;
            }
        }

        return false;
    }
}
