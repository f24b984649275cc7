namespace SessionMiddleware.Session;

/// <summary>
/// A session's sign-ins by authentication scheme, kept out of its data (<c>Keys</c>, <c>Clear</c>, <c>MaxSessionBytes</c>),
/// and whether this request changed them. A merge with a concurrent commit takes them as a whole: this request's when it
/// signed in or out, otherwise the newer row's.
/// </summary>
internal sealed class SessionTickets
{
    private Dictionary<string, SessionTicket> _tickets;

    /// <summary>No sign-in.</summary>
    public SessionTickets()
        : this(new Dictionary<string, SessionTicket>(StringComparer.Ordinal))
    {
    }

    private SessionTickets(Dictionary<string, SessionTicket> tickets) => _tickets = tickets;

    /// <summary>The sign-ins of stored, encoded tickets by scheme; one that cannot be decoded is left out.</summary>
    public static SessionTickets Decode(Dictionary<string, byte[]> encoded) => new(DecodeAll(encoded));

    /// <summary>True when this request changed the sign-ins since the last commit.</summary>
    public bool Changed { get; private set; }

    /// <summary>Number of sign-ins.</summary>
    public int Count => _tickets.Count;

    /// <summary>
    /// The time a remembered (persistent) sign-in keeps the session until, even past its idle timeout; null when no
    /// ticket is persistent.
    /// </summary>
    public DateTimeOffset? KeepUntil
    {
        get
        {
            DateTimeOffset? until = null;
            foreach (var ticket in _tickets.Values)
            {
                if (ticket.KeepUntil > until || until is null)
                {
                    until = ticket.KeepUntil ?? until;
                }
            }

            return until;
        }
    }

    /// <summary>The sign-in of an authentication scheme, or null.</summary>
    public SessionTicket? Get(string scheme) => _tickets.GetValueOrDefault(scheme);

    /// <summary>Stores (or replaces) the sign-in of an authentication scheme.</summary>
    public void Set(string scheme, SessionTicket ticket)
    {
        _tickets[scheme] = ticket;
        Changed = true;
    }

    /// <summary>Removes the sign-in of an authentication scheme.</summary>
    public void Remove(string scheme)
    {
        if (_tickets.Remove(scheme))
        {
            Changed = true;
        }
    }

    /// <summary>Removes every sign-in.</summary>
    public void RemoveAll()
    {
        if (_tickets.Count > 0)
        {
            _tickets.Clear();
            Changed = true;
        }
    }

    /// <summary>The encoded tickets by scheme, as serialized; null when there is none.</summary>
    public Dictionary<string, byte[]>? Encode() =>
        _tickets.Count == 0 ? null : _tickets.ToDictionary(t => t.Key, t => t.Value.Encode(), StringComparer.Ordinal);

    /// <summary>The change is stored.</summary>
    public void ChangesCommitted() => Changed = false;

    /// <summary>No sign-in and no change (the session was abandoned, or its row is gone).</summary>
    public void Reset()
    {
        _tickets.Clear();
        Changed = false;
    }

    /// <summary>Takes a concurrent commit's sign-ins (encoded), unless this request changed its own.</summary>
    public void Rebase(Dictionary<string, byte[]> newer)
    {
        if (!Changed)
        {
            _tickets = DecodeAll(newer);
        }
    }

    private static Dictionary<string, SessionTicket> DecodeAll(Dictionary<string, byte[]> encoded)
    {
        var tickets = new Dictionary<string, SessionTicket>(StringComparer.Ordinal);
        foreach (var (scheme, bytes) in encoded)
        {
            if (SessionTicket.Decode(bytes) is { } ticket)
            {
                tickets[scheme] = ticket;
            }
        }

        return tickets;
    }
}
