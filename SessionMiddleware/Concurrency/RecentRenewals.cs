using System.Diagnostics.CodeAnalysis;

namespace SessionMiddleware.Concurrency;

/// <summary>
/// The ID renewals this process committed lately: old key → new key. Consulted only when a row that a request had loaded
/// is gone at its commit (the request's change then follows the session to its new key) and by a revoke of the old ID.
/// A request that loads after the renewal finds no row under the old key and never gets here. Bounded and short-lived:
/// at most <see cref="Capacity"/> renewals of the last <see cref="Lifetime"/>, the oldest dropped first.
/// </summary>
internal sealed class RecentRenewals(TimeProvider timeProvider)
{
    /// <summary>The most renewals remembered.</summary>
    public const int Capacity = 4096;

    /// <summary>How long a renewal is remembered: a request that loaded the row before it and commits later than this fails instead of following it.</summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(2);

    private readonly Lock _lock = new();
    private readonly Dictionary<string, Renewal> _byOldKey = new(StringComparer.Ordinal);
    private readonly Queue<(string OldKey, Renewal Renewal)> _order = new();

    /// <summary>Records that the session under <paramref name="oldKey"/> now lives under <paramref name="newKey"/>.</summary>
    /// <param name="oldKey">The key before the renewal.</param>
    /// <param name="newKey">The key after it.</param>
    /// <param name="newSecretId">The new secret ID, for a concurrent sign-in of the same user that takes this renewal as its own.</param>
    /// <param name="userId">The user the renewed session is bound to.</param>
    /// <param name="signIn">Whether the renewal signed a user in or changed the session's user (see <see cref="Renewal.SignIn"/>).</param>
    public void Add(byte[] oldKey, byte[] newKey, byte[] newSecretId, string? userId, bool signIn)
    {
        var now = timeProvider.GetUtcNow();
        var renewal = new Renewal(newKey, newSecretId, userId, signIn, now);
        var old = Convert.ToHexString(oldKey);
        lock (_lock)
        {
            while (_order.TryPeek(out var first) && (_order.Count >= Capacity || now - first.Renewal.At > Lifetime))
            {
                _order.Dequeue();
                if (_byOldKey.TryGetValue(first.OldKey, out var current) && ReferenceEquals(current, first.Renewal))
                {
                    _byOldKey.Remove(first.OldKey);
                }
            }

            _byOldKey[old] = renewal;
            _order.Enqueue((old, renewal));
        }
    }

    /// <summary>The renewal of the session that had <paramref name="oldKey"/>, if this process committed it within <see cref="Lifetime"/>.</summary>
    public bool TryGet(byte[] oldKey, [NotNullWhen(true)] out Renewal? renewal)
    {
        var old = Convert.ToHexString(oldKey);
        lock (_lock)
        {
            if (_byOldKey.TryGetValue(old, out renewal) && timeProvider.GetUtcNow() - renewal.At <= Lifetime)
            {
                return true;
            }
        }

        renewal = null;
        return false;
    }

    /// <summary>Where a renewed session went.</summary>
    /// <param name="NewKey">Its key now.</param>
    /// <param name="NewSecretId">Its secret ID now (only ever sent in the cookie of a sign-in that takes the renewal as its own).</param>
    /// <param name="UserId">The user it is bound to.</param>
    /// <param name="SignIn">
    /// Whether the renewal was a sign-in (a change of the session's user, or a ticket store sign-in of the same user): a
    /// request that loaded the old row never follows such a renewal, so nothing a request begun before the sign-in writes
    /// reaches the signed-in session.
    /// </param>
    /// <param name="At">When the renewal was committed.</param>
    public sealed record Renewal(byte[] NewKey, byte[] NewSecretId, string? UserId, bool SignIn, DateTimeOffset At);
}
