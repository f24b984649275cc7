using SessionMiddleware.Ids;
using SessionMiddleware.Cookies;

namespace SessionMiddleware.Session;

/// <summary>
/// Where one request's session is in its life, as one value: new or stored (and under which ID and row version),
/// renewing, following a concurrent renewal, gone, and the abandoned row still to delete. Each transition is a method
/// that returns the next value, so a session's state changes in one assignment and what a transition leaves behind is
/// decided here, not reset field by field.
/// </summary>
internal sealed record SessionLifecycle
{
    /// <summary>A session with no row; its ID is made when it is first needed.</summary>
    public static readonly SessionLifecycle New = new() { IsNew = true };

    /// <summary>True while the session has no row in the store.</summary>
    public bool IsNew { get; private init; }

    /// <summary>True when the session's row disappeared under this request; nothing more is written.</summary>
    public bool IsGone { get; private init; }

    /// <summary>The secret ID (only ever sent in the protected cookie); null until a new session needs one.</summary>
    public byte[]? SecretId { get; private init; }

    /// <summary>SHA-256 of the secret ID: the stored key.</summary>
    public byte[]? Key { get; private init; }

    /// <summary>The row version the session's data is based on.</summary>
    public long Version { get; private init; }

    /// <summary>The user the session is bound to.</summary>
    public string? UserId { get; private init; }

    /// <summary>The ID before <c>RegenerateId</c> (key, secret ID, user), until the renewal is committed; null when not renewing.</summary>
    public RenewalOrigin? RenewingFrom { get; private init; }

    /// <summary>True when another request renewed the ID while this one ran and this one's changes follow it to the new key.</summary>
    public bool FollowsRenewal { get; private init; }

    /// <summary>The key this request presented, when it follows a renewal.</summary>
    public byte[]? FollowedFromKey { get; private init; }

    /// <summary>The key of a session abandoned in this request, until its row is deleted.</summary>
    public byte[]? AbandonedKey { get; private init; }

    /// <summary>The user the abandoned session was bound to.</summary>
    public string? AbandonedUserId { get; private init; }

    /// <summary>The ID a renewal replaces.</summary>
    public sealed record RenewalOrigin(byte[]? Key, byte[]? SecretId, string? UserId);

    /// <summary>A session loaded from its row.</summary>
    public static SessionLifecycle Stored(byte[] secretId, StoredSession stored) =>
        new() { SecretId = secretId, Key = stored.Key, Version = stored.Version, UserId = stored.UserId };

    /// <summary>A new secret ID and key, issued at <paramref name="now"/>, when the session has none yet.</summary>
    public SessionLifecycle WithId(DateTimeOffset now)
    {
        if (SecretId is not null && Key is not null)
        {
            return this;
        }

        var secretId = SessionIds.NewSecretId(now);
        return this with { SecretId = secretId, Key = SessionIds.ComputeKey(secretId) };
    }

    /// <summary>
    /// A new ID. A new session's ID is dropped (it gets a fresh one when stored); a stored one renews, remembering the ID
    /// it had before the first renewal of the request.
    /// </summary>
    public SessionLifecycle Regenerated(DateTimeOffset now)
    {
        if (IsNew)
        {
            return this with { SecretId = null, Key = null };
        }

        var secretId = SessionIds.NewSecretId(now);
        return this with
        {
            RenewingFrom = RenewingFrom ?? new RenewalOrigin(Key, SecretId, UserId),
            SecretId = secretId,
            Key = SessionIds.ComputeKey(secretId),
        };
    }

    /// <summary>Bound to another user (after <see cref="Regenerated"/>).</summary>
    public SessionLifecycle BoundTo(string? userId) => this with { UserId = userId };

    /// <summary>
    /// Abandoned: a new session from here on, and a stored one's row to delete (the ID the request presented when it
    /// follows a renewal, never the browser's new one). A row found gone stays gone.
    /// </summary>
    public SessionLifecycle Abandoned() => IsNew
        ? New with { IsGone = IsGone, AbandonedKey = AbandonedKey, AbandonedUserId = AbandonedUserId }
        : New with
        {
            IsGone = IsGone,
            AbandonedKey = FollowedFromKey ?? RenewingFrom?.Key ?? Key,
            AbandonedUserId = RenewingFrom is { } origin ? origin.UserId : UserId,
        };

    /// <summary>The abandoned row is deleted.</summary>
    public SessionLifecycle AbandonCommitted() => this with { AbandonedKey = null, AbandonedUserId = null };

    /// <summary>The change set is stored as <paramref name="version"/>.</summary>
    public SessionLifecycle Committed(long version) => this with { Version = version };

    /// <summary>The new session has its row, at <paramref name="version"/>.</summary>
    public SessionLifecycle Created(long version) => this with { IsNew = false, Version = version };

    /// <summary>The renewal is stored under the new key, at <paramref name="version"/>.</summary>
    public SessionLifecycle Renewed(long version) => this with { RenewingFrom = null, Version = version };

    /// <summary>Another request renewed the ID: the session lives on under <paramref name="newKey"/>; the secret ID stays the one presented.</summary>
    public SessionLifecycle Following(byte[] newKey) => this with { FollowedFromKey = FollowedFromKey ?? Key, Key = newKey, FollowsRenewal = true };

    /// <summary>This request's renewal takes the ID a concurrent sign-in of the same user renewed to.</summary>
    public SessionLifecycle Adopting(byte[] newKey, byte[] newSecretId) => this with { Key = newKey, SecretId = newSecretId, RenewingFrom = null };

    /// <summary>A renewal that can no longer be delivered is given up: the old ID stays.</summary>
    public SessionLifecycle RenewalCancelled() => RenewingFrom is { } origin
        ? this with { Key = origin.Key, SecretId = origin.SecretId, RenewingFrom = null }
        : this;

    /// <summary>The row is gone: nothing more is written under this ID.</summary>
    public SessionLifecycle Gone() => this with { IsGone = true };

    /// <summary>Merged onto a concurrent commit's row, at its <paramref name="version"/>.</summary>
    public SessionLifecycle Rebased(long version) => this with { Version = version };
}
