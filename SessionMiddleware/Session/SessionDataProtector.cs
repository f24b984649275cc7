using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Options;

namespace SessionMiddleware.Session;

/// <summary>
/// Seals a session's serialized data before it meets the store, when <see cref="ServerSideSessionOptions.ProtectData"/>
/// is on: <c>[<see cref="SealedFormat"/>] [Data Protection payload of the clear bytes]</c>, under a purpose of its own (a
/// cookie cannot be replayed as data, nor data as a cookie). Whatever the option, a sealed blob is recognised by its
/// first byte and opened, and a clear one read as it is: turning the option on or off never makes a row unreadable.
/// Every store gets it unchanged, as it only ever sees the bytes.
/// </summary>
internal sealed class SessionDataProtector
{
    /// <summary>The Data Protection purpose of session data; changing it makes every sealed row unreadable.</summary>
    public const string Purpose = "SessionMiddleware.ServerSideSession.Data.v1";

    /// <summary>
    /// The first byte of a sealed blob. The clear formats are small version numbers (<see cref="SessionSerializer.FormatVersion"/>,
    /// <see cref="SessionSerializer.FormatVersionWithTickets"/>); their numbering stays below this one.
    /// </summary>
    public const byte SealedFormat = 0x80;

    private readonly IDataProtector _protector;

    /// <summary>
    /// The clear bytes of the sealed blobs opened, by the blob's instance: a row the SQLite row cache keeps is the same
    /// array at every load, so it is unprotected once, not on every request. An entry lives as long as its blob (weakly
    /// keyed); a blob is never changed in place (a write stores a new array), and the reader copies what it reads out.
    /// </summary>
    private readonly ConditionalWeakTable<byte[], byte[]> _opened = [];

    public SessionDataProtector(IDataProtectionProvider provider, IOptions<ServerSideSessionOptions> options)
        : this(provider, options?.Value.ProtectData ?? throw new ArgumentNullException(nameof(options)))
    {
    }

    internal SessionDataProtector(IDataProtectionProvider provider, bool seals)
    {
        ArgumentNullException.ThrowIfNull(provider);
        _protector = provider.CreateProtector(Purpose);
        Seals = seals;
    }

    /// <summary>Whether <see cref="Seal"/> seals (<see cref="ServerSideSessionOptions.ProtectData"/>).</summary>
    public bool Seals { get; }

    /// <summary>Whether stored bytes are a sealed blob.</summary>
    public static bool IsSealed(ReadOnlySpan<byte> stored) => !stored.IsEmpty && stored[0] == SealedFormat;

    /// <summary>The bytes to store for serialized data: sealed when <see cref="Seals"/>, otherwise <paramref name="clear"/> itself.</summary>
    public byte[] Seal(byte[] clear)
    {
        if (!Seals)
        {
            return clear;
        }

        var payload = _protector.Protect(clear);
        var sealedBytes = new byte[payload.Length + 1];
        sealedBytes[0] = SealedFormat;
        payload.CopyTo(sealedBytes, 1);
        return sealedBytes;
    }

    /// <summary>
    /// Reads stored bytes, sealed or clear, with their sign-in tickets; returns an error description instead of throwing
    /// when they cannot be opened (sealed with a key the key ring no longer has, or tampered with) or read.
    /// </summary>
    public bool TryRead(
        byte[] stored, out Dictionary<string, byte[]> entries, out int size, out Dictionary<string, byte[]> tickets, out string? error)
    {
        var clear = stored;
        if (IsSealed(stored) && !_opened.TryGetValue(stored, out clear))
        {
            try
            {
                clear = _protector.Unprotect(stored.AsSpan(1).ToArray());
                _opened.AddOrUpdate(stored, clear);
            }
            catch (CryptographicException)
            {
                // Not the exception's message: it may name key IDs; the reason is enough to act on.
                entries = new Dictionary<string, byte[]>(StringComparer.Ordinal);
                tickets = new Dictionary<string, byte[]>(StringComparer.Ordinal);
                size = SessionSerializer.EmptySize;
                error = "sealed data that this application's key ring cannot open (a lost or different key ring, or tampered with)";
                return false;
            }
        }

        return SessionSerializer.TryDeserialize(clear, out entries, out size, out tickets, out error);
    }
}
