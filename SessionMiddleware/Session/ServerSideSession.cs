using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using Microsoft.AspNetCore.Http;
using SessionMiddleware.Ids;
using SessionMiddleware.Cookies;

namespace SessionMiddleware.Session;

/// <summary>
/// One request's session, as <see cref="HttpContext.Session"/>: its data and change set (<see cref="SessionData"/>),
/// its sign-ins (<see cref="SessionTickets"/>) and where it is in its life (<see cref="SessionLifecycle"/>, one value).
/// It knows nothing of the store: <see cref="CommitAsync"/> runs the delegate its owner gave it.
/// </summary>
internal sealed partial class ServerSideSession : IServerSideSession
{
    private readonly ISessionOwner? _owner;
    private readonly SessionDataProtector _protector;
    private readonly TimeProvider _time;
    private readonly SessionData _data;
    private readonly SessionTickets _tickets;
    private SessionLifecycle _state;
    private string? _publicId;
    private byte[]? _publicIdOf;

    private ServerSideSession(ISessionOwner? owner, SessionDataProtector protector, TimeProvider time, SessionData data, SessionTickets tickets, SessionLifecycle state)
    {
        _owner = owner;
        _protector = protector;
        _time = time;
        _data = data;
        _tickets = tickets;
        _state = state;
    }

    /// <summary>A session with no row: its secret ID is made when it is first needed (issued at <paramref name="time"/>'s now then).</summary>
    public static ServerSideSession CreateNew(ISessionOwner? owner, SessionDataProtector protector, TimeProvider time, int maxBytes, DateTimeOffset now) =>
        new(owner, protector, time, new SessionData(maxBytes), new SessionTickets(), SessionLifecycle.New)
        {
            CreatedAt = now,
            LastAccessAt = now,
        };

    /// <summary>A session loaded from its row; corrupt data yields an empty session and a non-null error.</summary>
    public static ServerSideSession FromStored(
        ISessionOwner? owner, SessionDataProtector protector, TimeProvider time, int maxBytes, byte[] secretId, StoredSession stored, out string? dataError)
    {
        // Unreadable data is read as empty but kept: only a change by the app replaces it (old nodes must not wipe newer rows).
        var data = SessionData.Read(stored.Data, protector, maxBytes, out var tickets, out dataError);
        return new ServerSideSession(owner, protector, time, data, SessionTickets.Decode(tickets), SessionLifecycle.Stored(secretId, stored))
        {
            CreatedAt = stored.CreatedAt,
            LastAccessAt = stored.LastAccessAt,
            SignIn = stored.SignIn,
        };
    }

    /// <summary>True while the session has no row in the store.</summary>
    public bool IsNew => _state.IsNew;

    /// <summary>True when the session's row disappeared under this request; nothing more is written.</summary>
    public bool IsGone => _state.IsGone;

    /// <summary>True when the stored data could not be read and the session started empty.</summary>
    public bool DataUnreadable => _data.UnreadableBytes is not null;

    /// <summary>The secret ID (only ever sent in the protected cookie); null until a new session needs one.</summary>
    public byte[]? SecretId => _state.SecretId;

    /// <summary>SHA-256 of the secret ID: the stored key.</summary>
    public byte[]? Key => _state.Key;

    /// <summary>The row version this session's data is based on.</summary>
    public long Version => _state.Version;

    /// <summary>True when this request changed the data or the sign-ins since the last commit.</summary>
    public bool IsModified => _data.IsModified || _tickets.Changed;

    /// <summary>The key this session had before <see cref="RegenerateId"/>, until the renewal is committed.</summary>
    public byte[]? RenewFromKey => _state.RenewingFrom?.Key;

    /// <summary>
    /// True when another request renewed this session's ID while this one ran and this one's changes follow the session
    /// to its new key: this request never sends a session cookie (the browser has the new one from the renewing request).
    /// </summary>
    public bool FollowsRenewal => _state.FollowsRenewal;

    /// <summary>
    /// True when the pending renewal is a sign-in: it binds the session to a user it was not bound to, or the ticket store
    /// signs the same user in again (<see cref="SigningIn"/>).
    /// </summary>
    public bool RenewalSignsIn => RenewalChangesUser && UserId is not null;

    /// <summary>
    /// True when the pending renewal changes who the session belongs to: a sign-in (<see cref="RenewalSignsIn"/>) or an
    /// unbinding. Requests that loaded the session before it cannot write into the renewed session.
    /// </summary>
    public bool RenewalChangesUser =>
        _state.RenewingFrom is { Key: not null } origin && (SigningIn || !string.Equals(UserId, origin.UserId, StringComparison.Ordinal));

    /// <summary>Whether cookie authentication signed a user in during this request (the ticket store sets it).</summary>
    public bool SigningIn { get; set; }

    /// <summary>Whether the session was abandoned by a sign-out (the ticket store), for the reason its end is counted under.</summary>
    public bool SignedOut { get; set; }

    /// <summary>The key of a session abandoned in this request, until its row is deleted.</summary>
    public byte[]? AbandonedKey => _state.AbandonedKey;

    /// <summary>
    /// The user the abandoned session was bound to: its abandon is that user's sign-out, which also ends the session
    /// under the ID a concurrent renewal of the same user gave it a moment ago.
    /// </summary>
    public string? AbandonedUserId => _state.AbandonedUserId;

    /// <summary>True when a new session has something to store: data, or a user.</summary>
    public bool HasContent => _data.Count > 0 || UserId is not null || _tickets.Count > 0;

    /// <summary>Number of entries.</summary>
    public int Count => _data.Count;

    /// <inheritdoc/>
    public string? UserId => _state.UserId;

    /// <inheritdoc/>
    public DateTimeOffset CreatedAt { get; private set; }
    /// <inheritdoc/>
    public DateTimeOffset LastAccessAt { get; private set; }

    /// <summary>
    /// The time a remembered (persistent) sign-in keeps the session until, even past its idle timeout; null when no
    /// ticket of the session is persistent.
    /// </summary>
    public DateTimeOffset? KeepUntil => _tickets.KeepUntil;

    /// <summary>The sign-in of an authentication scheme, or null.</summary>
    public SessionTicket? GetTicket(string scheme) => _tickets.Get(scheme);

    /// <summary>Stores (or replaces) the sign-in of an authentication scheme; written at commit.</summary>
    public void SetTicket(string scheme, SessionTicket ticket) => _tickets.Set(scheme, ticket);

    /// <summary>Removes the sign-in of an authentication scheme.</summary>
    public void RemoveTicket(string scheme) => _tickets.Remove(scheme);

    /// <summary>Removes every sign-in (another user signs in on this browser).</summary>
    public void RemoveAllTickets() => _tickets.RemoveAll();

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

    /// <summary>The request path's logger; null for a session without an owner (tests).</summary>
    public Microsoft.Extensions.Logging.ILogger? Logger => _owner?.Logger;

    /// <inheritdoc/>
    public CancellationToken Ended => _owner?.HoldUntilEnded() ?? CancellationToken.None;

    /// <inheritdoc/>
    public bool TryGetValue(string key, [NotNullWhen(true)] out byte[]? value)
    {
        ArgumentNullException.ThrowIfNull(key);
        return _data.TryGetValue(key, out value);
    }

    /// <inheritdoc/>
    public void Set(string key, byte[] value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        _data.Set(key, value);
    }

    /// <inheritdoc/>
    public void Remove(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        _data.Remove(key);
    }

    /// <inheritdoc/>
    public void Clear() => _data.Clear();

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
        _state = _state.Regenerated(_time.GetUtcNow()).BoundTo(userId);
    }

    /// <inheritdoc/>
    public void RegenerateId()
    {
        ThrowIfResponseStarted(nameof(RegenerateId));
        _state = _state.Regenerated(_time.GetUtcNow());
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

    /// <inheritdoc/>
    public void Abandon()
    {
        _state = _state.Abandoned();
        _data.Reset();
        _tickets.Reset();
    }

    /// <summary>Records that the abandoned row was deleted.</summary>
    public void MarkAbandonCommitted() => _state = _state.AbandonCommitted();

    /// <summary>Records that the renewal is stored under the new key.</summary>
    public void MarkRenewed(long version, DateTimeOffset lastAccessAt)
    {
        _state = _state.Renewed(version);
        ChangesCommitted(lastAccessAt);
    }

    /// <summary>
    /// The row this request loaded was renewed by a concurrent request: the session lives on under <paramref name="newKey"/>,
    /// where this request's changes are merged. The secret ID stays the one the request presented: the new one is not
    /// this request's to send (see <see cref="FollowsRenewal"/>).
    /// </summary>
    public void FollowRenewal(byte[] newKey) => _state = _state.Following(newKey);

    /// <summary>
    /// This request's own renewal (a sign-in) met a concurrent sign-in of the same user that renewed the ID first: it takes
    /// that renewal's ID instead of renewing again, so both responses carry the same session.
    /// </summary>
    public void AdoptRenewal(byte[] newKey, byte[] newSecretId) => _state = _state.Adopting(newKey, newSecretId);

    /// <summary>Gives up a renewal that can no longer be delivered (the response has started): the old ID stays.</summary>
    public void CancelRenewal() => _state = _state.RenewalCancelled();

    /// <summary>The bytes to store: the serialized data (sealed under ProtectData), or the unreadable stored bytes as they were while nothing changed.</summary>
    public byte[] Serialize() =>
        _data.UnreadableBytes is { } unreadable && !IsModified ? unreadable : _protector.Seal(SessionSerializer.Serialize(_data.Values, _data.Size, _tickets.Encode()));

    /// <summary>Makes the secret ID and key of a new session if it has none yet.</summary>
    [MemberNotNull(nameof(SecretId), nameof(Key))]
    public void EnsureId()
    {
        _state = _state.WithId(_time.GetUtcNow());
        if (SecretId is null || Key is null)
        {
            throw new UnreachableException();
        }
    }

    /// <summary>Records that the change set is stored as <paramref name="version"/>.</summary>
    public void MarkCommitted(long version, DateTimeOffset lastAccessAt)
    {
        _state = _state.Committed(version);
        ChangesCommitted(lastAccessAt);
    }

    /// <summary>Records that the new session now has a row.</summary>
    public void MarkCreated(StoredSession stored)
    {
        _state = _state.Created(stored.Version);
        CreatedAt = stored.CreatedAt;
        ChangesCommitted(stored.LastAccessAt);
    }

    /// <summary>Records an access written to the store.</summary>
    public void MarkTouched(DateTimeOffset now) => LastAccessAt = now;

    /// <summary>Records that the row is gone: this request writes nothing more under this ID.</summary>
    public void MarkGone()
    {
        _state = _state.Gone();
        _data.ForgetChanges();
        _tickets.Reset();
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
        var readable = _protector.TryRead(newer.Data, out var values, out _, out var newerTickets, out _);
        _tickets.Rebase(newerTickets);
        if (!_data.TryRebase(readable ? values : null, newer.Data, out var size))
        {
            throw new InvalidOperationException(
                $"This request's changes to session {Id}, merged with a concurrent commit, would make it {size} bytes, over the " +
                $"limit of {_data.MaxBytes} bytes (ServerSideSessionOptions.{nameof(ServerSideSessionOptions.MaxSessionBytes)}). " +
                "This request's changes were not stored; the concurrent commit stands.");
        }

        _state = _state.Rebased(newer.Version);
        LastAccessAt = newer.LastAccessAt;
    }

    private void ChangesCommitted(DateTimeOffset lastAccessAt)
    {
        LastAccessAt = lastAccessAt;
        _data.ChangesCommitted();
        _tickets.ChangesCommitted();
    }
}
