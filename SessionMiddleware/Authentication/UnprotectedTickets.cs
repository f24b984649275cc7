using Microsoft.AspNetCore.Authentication;
using SessionMiddleware.Concurrency;
using SessionMiddleware.Session;

namespace SessionMiddleware.Authentication;

/// <summary>
/// The tickets of one scheme this process has unprotected and deserialized (or protected itself), by the reference the
/// authentication cookie carries, so that a signed-in request pays neither Data Protection nor deserialization again.
/// </summary>
/// <remarks>
/// An entry serves only the exact protected bytes it was made from: a ticket replaced in the row (a renewal, another
/// sign-in, another process's write) has other bytes and misses. What the session no longer holds (revoked, signed out,
/// expired) is never asked for: the ticket store looks here only for the ticket the loaded row keeps. Each caller gets
/// its own copy (<see cref="AuthenticationTicket.Clone"/>): the cookie handler and claims transformations change the
/// ticket they are given. Bounded: past <see cref="MaxEntries"/> the cache starts over.
/// </remarks>
internal sealed class UnprotectedTickets
{
    /// <summary>The most tickets kept; a few KB each.</summary>
    public const int MaxEntries = 4096;

    private readonly BoundedCache<string, Entry> _entries = new(MaxEntries, StringComparer.Ordinal);

    /// <summary>A copy of the ticket <paramref name="kept"/> protects, when this process has it; otherwise null.</summary>
    /// <param name="kept">The sign-in the session row keeps.</param>
    /// <returns>The ticket, the caller's own copy, or <see langword="null"/>.</returns>
    public AuthenticationTicket? Get(SessionTicket kept) =>
        _entries.TryGetValue(kept.Id, out var entry) && entry.Protected.AsSpan().SequenceEqual(kept.ProtectedTicket)
            ? entry.Ticket.Clone()
            : null;

    /// <summary>Remembers <paramref name="ticket"/> as what <paramref name="kept"/> protects (a copy of it).</summary>
    /// <param name="kept">The sign-in as the session row keeps it.</param>
    /// <param name="ticket">Its ticket, unprotected.</param>
    public void Set(SessionTicket kept, AuthenticationTicket ticket)
    {
        _entries.Set(kept.Id, new Entry(kept.ProtectedTicket, ticket.Clone()));
    }

    /// <summary>How many tickets are kept (tests).</summary>
    internal int Count => _entries.Count;

    private sealed record Entry(byte[] Protected, AuthenticationTicket Ticket);
}
