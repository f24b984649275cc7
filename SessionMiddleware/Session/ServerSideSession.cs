using System.Diagnostics.CodeAnalysis;
using Microsoft.AspNetCore.Http;
using SessionMiddleware.Cookies;
using SessionMiddleware.Ids;

namespace SessionMiddleware.Session;

/// <summary>
/// One request's session: the data in memory, with ASP.NET Core <see cref="ISession"/> semantics
/// (ordinal, case-sensitive keys; <c>Set</c> copies the value), and the change set this request made,
/// so that a commit that meets a concurrent change can re-apply it to the newer data. It knows nothing of the
/// store: <see cref="CommitAsync"/> runs the delegate its owner gave it.
/// </summary>
internal sealed class ServerSideSession : IServerSideSession
{
    private readonly int _maxBytes;
    private string? _publicId;
    private byte[]? _publicIdOf;
    private readonly ISessionOwner? _owner;
    private Dictionary<string, byte[]> _data;
    private int _size;

    // The change set since the last commit: a value, or null for a removal; _cleared when Clear was called first.
    private readonly Dictionary<string, byte[]?> _changes = new(StringComparer.Ordinal);
    private bool _cleared;
    private bool _dirty;
    private byte[]? _renewFromSecretId;
    private string? _renewFromUserId;
    private byte[]? _followedFromKey;

    // The stored bytes this library could not read (e.g. a newer format): written back as they are until the app changes the data.
    private byte[]? _unreadableData;

    // Sign-in tickets by authentication scheme, kept out of the data (Keys, Clear, MaxSessionBytes).
    private Dictionary<string, SessionTicket> _tickets = new(StringComparer.Ordinal);
    private bool _ticketsChanged;

    private ServerSideSession(ISessionOwner? owner, int maxBytes, Dictionary<string, byte[]> data, int size)
    {
        _owner = owner;
        _maxBytes = maxBytes;
        _data = data;
        _size = size;
    }

    /// <summary>A session with no row: its secret ID is made when it is first needed.</summary>
    public static ServerSideSession CreateNew(ISessionOwner? owner, int maxBytes, DateTimeOffset now)
    {
        return new ServerSideSession(owner, maxBytes, new Dictionary<string, byte[]>(StringComparer.Ordinal), SessionSerializer.EmptySize)
        {
            IsNew = true,
            CreatedAt = now,
            LastAccessAt = now,
        };
    }

    /// <summary>A session loaded from its row; corrupt data yields an empty session and a non-null error.</summary>
    public static ServerSideSession FromStored(ISessionOwner? owner, int maxBytes, byte[] secretId, StoredSession stored, out string? dataError)
    {
        if (!SessionSerializer.TryDeserialize(stored.Data, out var data, out var size, out var tickets, out dataError))
        {
            data = new Dictionary<string, byte[]>(StringComparer.Ordinal);
            size = SessionSerializer.EmptySize;
        }

        var session = new ServerSideSession(owner, maxBytes, data, size)
        {
            _tickets = DecodeTickets(tickets),
            IsNew = false,
            SecretId = secretId,
            Key = stored.Key,
            Version = stored.Version,
            UserId = stored.UserId,
            CreatedAt = stored.CreatedAt,
            LastAccessAt = stored.LastAccessAt,
        };

        // Unreadable data is read as empty but kept: only a change by the app replaces it (old nodes must not wipe newer rows).
        session.DataUnreadable = dataError is not null;
        session._unreadableData = dataError is not null ? stored.Data : null;
        return session;
    }

    /// <summary>True while the session has no row in the store.</summary>
    public bool IsNew { get; private set; }

    /// <summary>True when the session's row disappeared under this request; nothing more is written.</summary>
    public bool IsGone { get; private set; }

    /// <summary>True when the stored data could not be read and the session started empty.</summary>
    public bool DataUnreadable { get; private set; }

    /// <summary>The secret ID (only ever sent in the protected cookie); null until a new session needs one.</summary>
    public byte[]? SecretId { get; private set; }

    /// <summary>SHA-256 of the secret ID: the stored key.</summary>
    public byte[]? Key { get; private set; }

    /// <summary>The row version this session's data is based on.</summary>
    public long Version { get; private set; }

    /// <summary>True when this request changed the data since the last commit.</summary>
    public bool IsModified => _dirty;

    /// <summary>The key this session had before <see cref="RegenerateId"/>, until the renewal is committed.</summary>
    public byte[]? RenewFromKey { get; private set; }

    /// <summary>
    /// True when another request renewed this session's ID while this one ran and this one's changes follow the session
    /// to its new key: this request never sends a session cookie (the browser has the new one from the renewing request).
    /// </summary>
    public bool FollowsRenewal { get; private set; }

    /// <summary>
    /// True when the pending renewal is a sign-in: it binds the session to a user it was not bound to, or the ticket store
    /// signs the same user in again (<see cref="SigningIn"/>).
    /// </summary>
    public bool RenewalSignsIn => RenewFromKey is not null && UserId is not null && (SigningIn || !string.Equals(UserId, _renewFromUserId, StringComparison.Ordinal));

    /// <summary>
    /// True when the pending renewal changes who the session belongs to: a sign-in (<see cref="RenewalSignsIn"/>) or an
    /// unbinding. Requests that loaded the session before it cannot write into the renewed session.
    /// </summary>
    public bool RenewalChangesUser => RenewFromKey is not null && (SigningIn || !string.Equals(UserId, _renewFromUserId, StringComparison.Ordinal));

    /// <summary>Whether cookie authentication signed a user in during this request (the ticket store sets it).</summary>
    public bool SigningIn { get; set; }

    /// <summary>The key of a session abandoned in this request, until its row is deleted.</summary>
    public byte[]? AbandonedKey { get; private set; }

    /// <summary>True when a new session has something to store: data, or a user.</summary>
    public bool HasContent => _data.Count > 0 || UserId is not null || _tickets.Count > 0;

    /// <summary>Number of entries.</summary>
    public int Count => _data.Count;

    /// <inheritdoc/>
    public string? UserId { get; private set; }

    /// <inheritdoc/>
    public DateTimeOffset CreatedAt { get; private set; }

    /// <inheritdoc/>
    public DateTimeOffset LastAccessAt { get; private set; }

    /// <summary>
    /// The time a remembered (persistent) sign-in keeps the session until, even past its idle timeout; null when no
    /// ticket of the session is persistent.
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
    public SessionTicket? GetTicket(string scheme) => _tickets.GetValueOrDefault(scheme);

    /// <summary>Stores (or replaces) the sign-in of an authentication scheme; written at commit.</summary>
    public void SetTicket(string scheme, SessionTicket ticket)
    {
        _tickets[scheme] = ticket;
        _ticketsChanged = true;
        _dirty = true;
    }

    /// <summary>Removes the sign-in of an authentication scheme.</summary>
    public void RemoveTicket(string scheme)
    {
        if (_tickets.Remove(scheme))
        {
            _ticketsChanged = true;
            _dirty = true;
        }
    }

    /// <summary>Removes every sign-in (another user signs in on this browser).</summary>
    public void RemoveAllTickets()
    {
        if (_tickets.Count > 0)
        {
            _tickets.Clear();
            _ticketsChanged = true;
            _dirty = true;
        }
    }

    /// <inheritdoc/>
    public bool IsAvailable => true;

    /// <inheritdoc/>
    public string Id
    {
        get
        {
            EnsureId();

            // Built once per key (the key changes on renewal, abandon and re-creation), not on every read.
            if (!ReferenceEquals(_publicIdOf, Key))
            {
                _publicId = SessionIds.ToPublicId(Key);
                _publicIdOf = Key;
            }

            return _publicId!;
        }
    }

    /// <inheritdoc/>
    public IEnumerable<string> Keys => _data.Keys;

    /// <inheritdoc/>
    public Task LoadAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

    /// <inheritdoc/>
    public Task CommitAsync(CancellationToken cancellationToken = default) => _owner?.CommitAsync(cancellationToken) ?? Task.CompletedTask;

    /// <inheritdoc/>
    public bool TryGetValue(string key, [NotNullWhen(true)] out byte[]? value)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (_data.TryGetValue(key, out var stored))
        {
            value = (byte[])stored.Clone();
            return true;
        }

        value = null;
        return false;
    }

    /// <inheritdoc/>
    public void Set(string key, byte[] value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        var newSize = SizeAfterSet(key, value.Length);
        if (newSize > _maxBytes)
        {
            throw new InvalidOperationException(
                $"Setting session key '{key}' would make the session {newSize} bytes, over the limit of {_maxBytes} bytes " +
                $"(ServerSideSessionOptions.{nameof(ServerSideSessionOptions.MaxSessionBytes)}). Nothing was stored.");
        }

        var copy = (byte[])value.Clone();
        _data[key] = copy;
        _size = newSize;
        _changes[key] = copy;
        _dirty = true;
    }

    /// <inheritdoc/>
    public void Remove(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        // The removal is always part of the change set (a concurrent request may have added the key), but removing
        // a key that is not there does not by itself make the session need a write, as in ASP.NET Core's session.
        if (_data.Remove(key, out var old))
        {
            _size -= SessionSerializer.EntrySize(key, old.Length);
            _size += SessionSerializer.HeaderSize(_data.Count) - SessionSerializer.HeaderSize(_data.Count + 1);
            _dirty = true;
        }

        _changes[key] = null;
    }

    /// <inheritdoc/>
    public void Clear()
    {
        // Like Remove: always part of the change set, but clearing an empty session does not by itself need a write.
        _dirty |= _data.Count > 0;
        _data.Clear();
        _size = SessionSerializer.EmptySize;
        _changes.Clear();
        _cleared = true;
    }

    /// <inheritdoc/>
    public void BindToUser(string? userId)
    {
        if (userId is not null && userId.Length == 0)
        {
            throw new ArgumentException("A user ID must not be empty; pass null to unbind.", nameof(userId));
        }

        if (string.Equals(userId, UserId, StringComparison.Ordinal))
        {
            return;
        }

        ThrowIfResponseStarted(nameof(BindToUser));
        RegenerateId();
        UserId = userId;
    }

    /// <inheritdoc/>
    public void RegenerateId()
    {
        ThrowIfResponseStarted(nameof(RegenerateId));
        if (IsNew)
        {
            // No row yet: the session gets a fresh ID when it is stored; any ID handed out so far is replaced.
            SecretId = null;
            Key = null;
            return;
        }

        if (RenewFromKey is null)
        {
            RenewFromKey = Key;
            _renewFromSecretId = SecretId;
            _renewFromUserId = UserId;
        }

        SecretId = SessionIds.NewSecretId();
        Key = SessionIds.ComputeKey(SecretId);
    }

    // A new ID needs a Set-Cookie header: once the response has started it cannot be sent, so the call is refused
    // at once rather than dropped at the commit (a sign-out that silently did not happen).
    private void ThrowIfResponseStarted(string call)
    {
        if (_owner?.ResponseHasStarted == true)
        {
            throw new InvalidOperationException(
                $"{call} was called after the response has started: the session's new cookie could no longer be sent, so nothing was changed. " +
                "Call BindToUser and RegenerateId before writing the response body.");
        }
    }

    /// <summary>Whether the session was abandoned by a sign-out (the ticket store), for the reason its end is counted under.</summary>
    public bool SignedOut { get; set; }

    /// <inheritdoc/>
    public void Abandon()
    {
        if (!IsNew)
        {
            // A request that followed a concurrent renewal ends only the ID it presented, never the browser's new one.
            AbandonedKey = _followedFromKey ?? RenewFromKey ?? Key;
            AbandonedUserId = RenewFromKey is not null ? _renewFromUserId : UserId;
        }

        IsNew = true;
        FollowsRenewal = false;
        _followedFromKey = null;
        RenewFromKey = null;
        _renewFromSecretId = null;
        SecretId = null;
        Key = null;
        UserId = null;
        Version = 0;
        DataUnreadable = false;
        _unreadableData = null;
        _data.Clear();
        _size = SessionSerializer.EmptySize;
        _changes.Clear();
        _cleared = false;
        _dirty = false;
        _tickets.Clear();
        _ticketsChanged = false;
    }

    /// <summary>
    /// The user the abandoned session was bound to: its abandon is that user's sign-out, which also ends the session
    /// under the ID a concurrent renewal of the same user gave it a moment ago.
    /// </summary>
    public string? AbandonedUserId { get; private set; }

    /// <summary>Records that the abandoned row was deleted.</summary>
    public void MarkAbandonCommitted()
    {
        AbandonedKey = null;
        AbandonedUserId = null;
    }

    /// <summary>Records that the renewal is stored under the new key.</summary>
    public void MarkRenewed(long version, DateTimeOffset lastAccessAt)
    {
        RenewFromKey = null;
        _renewFromSecretId = null;
        _renewFromUserId = null;
        MarkCommitted(version, lastAccessAt);
    }

    /// <summary>
    /// The row this request loaded was renewed by a concurrent request: the session lives on under <paramref name="newKey"/>,
    /// where this request's changes are merged. The secret ID stays the one the request presented: the new one is not
    /// this request's to send (see <see cref="FollowsRenewal"/>).
    /// </summary>
    public void FollowRenewal(byte[] newKey)
    {
        _followedFromKey ??= Key;
        Key = newKey;
        FollowsRenewal = true;
    }

    /// <summary>
    /// This request's own renewal (a sign-in) met a concurrent sign-in of the same user that renewed the ID first: it takes
    /// that renewal's ID instead of renewing again, so both responses carry the same session.
    /// </summary>
    public void AdoptRenewal(byte[] newKey, byte[] newSecretId)
    {
        Key = newKey;
        SecretId = newSecretId;
        RenewFromKey = null;
        _renewFromSecretId = null;
        _renewFromUserId = null;
    }

    /// <summary>Gives up a renewal that can no longer be delivered (the response has started): the old ID stays.</summary>
    public void CancelRenewal()
    {
        if (RenewFromKey is { } old)
        {
            Key = old;
            SecretId = _renewFromSecretId;
            RenewFromKey = null;
            _renewFromSecretId = null;
            _renewFromUserId = null;
        }
    }

    /// <summary>The serialized data.</summary>
    public byte[] Serialize() =>
        DataUnreadable && !_dirty ? _unreadableData! :
        SessionSerializer.Serialize(_data, _size, _tickets.Count == 0 ? null : _tickets.ToDictionary(t => t.Key, t => t.Value.Encode(), StringComparer.Ordinal));

    /// <summary>Makes the secret ID and key of a new session if it has none yet.</summary>
    [MemberNotNull(nameof(SecretId), nameof(Key))]
    public void EnsureId()
    {
        if (SecretId is null || Key is null)
        {
            SecretId = SessionIds.NewSecretId();
            Key = SessionIds.ComputeKey(SecretId);
        }
    }

    /// <summary>Records that the change set is stored as <paramref name="version"/>.</summary>
    public void MarkCommitted(long version, DateTimeOffset lastAccessAt)
    {
        Version = version;
        LastAccessAt = lastAccessAt;
        _changes.Clear();
        _cleared = false;
        _dirty = false;
        _ticketsChanged = false;
        DataUnreadable = false;
        _unreadableData = null;
    }

    /// <summary>Records that the new session now has a row.</summary>
    public void MarkCreated(StoredSession stored)
    {
        IsNew = false;
        CreatedAt = stored.CreatedAt;
        MarkCommitted(stored.Version, stored.LastAccessAt);
    }

    /// <summary>Records an access written to the store.</summary>
    public void MarkTouched(DateTimeOffset now) => LastAccessAt = now;

    /// <summary>Records that the row is gone: this request writes nothing more under this ID.</summary>
    public void MarkGone()
    {
        IsGone = true;
        _changes.Clear();
        _cleared = false;
        _dirty = false;
        _tickets.Clear();
        _ticketsChanged = false;
    }

    /// <summary>
    /// Re-applies this request's change set on top of newer stored data (after a concurrent commit), so
    /// that keys this request did not touch keep the other commit's values.
    /// </summary>
    /// <exception cref="InvalidOperationException">
    /// The merge would be larger than <see cref="ServerSideSessionOptions.MaxSessionBytes"/> (each request stayed under
    /// it on its own); nothing of this request is stored, the concurrent commit stands.
    /// </exception>
    public void Rebase(StoredSession newer)
    {
        var readable = SessionSerializer.TryDeserialize(newer.Data, out var data, out _, out var newerTickets, out _);
        if (_cleared || !readable)
        {
            data = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        }

        // The sign-ins are merged as a whole: this request's, if it signed in or out; otherwise the newer row's.
        if (!_ticketsChanged)
        {
            _tickets = DecodeTickets(newerTickets);
        }

        foreach (var (key, value) in _changes)
        {
            if (value is null)
            {
                data.Remove(key);
            }
            else
            {
                data[key] = value;
            }
        }

        var size = RecomputeSize(data);
        if (size > _maxBytes)
        {
            throw new InvalidOperationException(
                $"This request's changes to session {Id}, merged with a concurrent commit, would make it {size} bytes, over the " +
                $"limit of {_maxBytes} bytes (ServerSideSessionOptions.{nameof(ServerSideSessionOptions.MaxSessionBytes)}). " +
                "This request's changes were not stored; the concurrent commit stands.");
        }

        _data = data;
        _size = size;
        DataUnreadable = !readable;
        _unreadableData = readable ? null : newer.Data;
        Version = newer.Version;
        LastAccessAt = newer.LastAccessAt;
    }

    private static Dictionary<string, SessionTicket> DecodeTickets(Dictionary<string, byte[]> encoded)
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

    private static int RecomputeSize(Dictionary<string, byte[]> data)
    {
        var size = SessionSerializer.HeaderSize(data.Count);
        foreach (var (key, value) in data)
        {
            size += SessionSerializer.EntrySize(key, value.Length);
        }

        return size;
    }

    private int SizeAfterSet(string key, int valueLength)
    {
        var size = _size;
        var count = _data.Count;
        if (_data.TryGetValue(key, out var old))
        {
            size -= SessionSerializer.EntrySize(key, old.Length);
        }
        else
        {
            size += SessionSerializer.HeaderSize(count + 1) - SessionSerializer.HeaderSize(count);
        }

        return size + SessionSerializer.EntrySize(key, valueLength);
    }
}
