using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SessionMiddleware.Diagnostics;
using SessionMiddleware.Storage;

namespace SessionMiddleware.Live;

/// <summary>
/// The sessions this process holds open, by key: hub connections, Blazor Server circuits and the app's
/// <see cref="IServerSideSession.Ended"/> tokens. Every end of a session in this process (revoke, abandon, sign-out,
/// expiry), and in others through the store's <see cref="ISessionChangeFeed"/>, is reported here and cancels the
/// session's token at once; a renewal of the same user moves the session to its new key, a renewal to another user ends
/// it. Ends of keys not held are remembered for <see cref="RecentLifetime"/>, so a connection whose request loaded the
/// session just before its end still ends.
/// </summary>
internal sealed partial class LiveSessionRegistry : ISessionChangeListener
{
    /// <summary>How long an end or renewal of a key is remembered for a holder that comes late.</summary>
    public static readonly TimeSpan RecentLifetime = TimeSpan.FromMinutes(2);

    /// <summary>The most ends and renewals remembered.</summary>
    public const int RecentCapacity = 4096;

    private readonly Lock _lock = new();
    private readonly Dictionary<string, List<LiveSession>> _byKey = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Recent> _recent = new(StringComparer.Ordinal);
    private readonly Queue<(string Key, Recent Change)> _recentOrder = new();
    private readonly TaskCompletionSource _firstHeld = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly IServerSideSessionStore _store;
    private readonly TimeProvider _timeProvider;
    private readonly ServerSideSessionOptions _options;
    private readonly SessionExpiry _expiry;
    private readonly ILogger<LiveSessionRegistry> _logger;
    private int _count;

    public LiveSessionRegistry(
        [FromKeyedServices(InstrumentedSessionStore.ServiceKey)] IServerSideSessionStore store,
        IOptions<ServerSideSessionOptions> options,
        TimeProvider timeProvider,
        ILogger<LiveSessionRegistry> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _store = store;
        _options = options.Value;
        _timeProvider = timeProvider;
        _expiry = new SessionExpiry(_options.IdleTimeout, _options.AbsoluteTimeout, timeProvider);
        _logger = logger;
    }

    /// <summary>How many sessions are held (each may have several holders).</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Completes when the first session is held: the monitor starts listening for other processes' ends then.</summary>
    public Task FirstHeld => _firstHeld.Task;

    /// <summary>
    /// Holds the session under <paramref name="key"/> for one holder (a connection or a circuit) until the lease is
    /// disposed. The lease's session has ended already when the key ended lately (or was renewed to another user).
    /// </summary>
    /// <param name="key">The session's key, as its request loaded it.</param>
    /// <param name="userId">The user the session is bound to.</param>
    /// <param name="expiresAt">When the session expires, as far as the caller knows.</param>
    public LiveSessionLease Hold(byte[] key, string? userId, DateTimeOffset expiresAt) =>
        new(this, Add(key, userId, expiresAt, pinned: false));

    /// <summary>Holds the session under <paramref name="key"/> until it ends, for a token the app keeps (<see cref="IServerSideSession.Ended"/>).</summary>
    public CancellationToken HoldUntilEnded(byte[] key, string? userId, DateTimeOffset expiresAt) =>
        Add(key, userId, expiresAt, pinned: true).Ended;

    /// <summary>A session not stored yet (a new one): <see cref="Attach"/> it once stored, or <see cref="EndPending"/>.</summary>
    public LiveSession NewPending(string? userId) => new(userId, _timeProvider.GetUtcNow(), _timeProvider.GetUtcNow()) { Pinned = true };

    /// <summary>Holds a pending session under the key it was stored with, until it ends.</summary>
    public void Attach(LiveSession pending, byte[] key, DateTimeOffset expiresAt)
    {
        pending.ExpiresAt = expiresAt;
        var hex = Convert.ToHexString(key);
        lock (_lock)
        {
            if (!pending.HasEnded)
            {
                pending.Key = key;
                pending.KeyHex = hex;
                AddLocked(hex, pending);
            }
        }
    }

    /// <summary>A pending session that was never stored (the request stored nothing, or failed): ends it.</summary>
    public void EndPending(LiveSession pending) => EndAll([pending]);

    private LiveSession Add(byte[] key, string? userId, DateTimeOffset expiresAt, bool pinned)
    {
        var hex = Convert.ToHexString(key);
        LiveSession session;
        lock (_lock)
        {
            // A key that ended or moved lately: the holder's request loaded it just before.
            for (var hops = 0; _recent.TryGetValue(hex, out var change) && IsRecent(change); hops++)
            {
                if (change.NewKey is null || hops == 8 || !string.Equals(change.UserId, userId, StringComparison.Ordinal))
                {
                    var ended = new LiveSession(userId, expiresAt, _timeProvider.GetUtcNow());
                    ended.End();
                    return ended;
                }

                key = change.NewKey;
                hex = Convert.ToHexString(key);
            }

            if (_byKey.TryGetValue(hex, out var sessions) &&
                sessions.Find(s => !s.HasEnded && string.Equals(s.UserId, userId, StringComparison.Ordinal)) is { } held)
            {
                session = held;
                if (expiresAt > session.ExpiresAt)
                {
                    session.ExpiresAt = expiresAt;
                }
            }
            else
            {
                session = new LiveSession(userId, expiresAt, _timeProvider.GetUtcNow()) { Key = key, KeyHex = hex };
                AddLocked(hex, session);
            }

            session.Holders += pinned ? 0 : 1;
            session.Pinned |= pinned;
        }

        return session;
    }

    private void AddLocked(string hex, LiveSession session)
    {
        if (!_byKey.TryGetValue(hex, out var sessions))
        {
            _byKey[hex] = sessions = new List<LiveSession>(1);
        }

        sessions.Add(session);
        _count++;
        _firstHeld.TrySetResult();
    }

    /// <summary>One holder let the session go; forgotten when none is left and no token of the app holds it.</summary>
    internal void Release(LiveSession session)
    {
        lock (_lock)
        {
            session.Holders--;
            if (session.Holders <= 0 && !session.Pinned && session.KeyHex is { } hex)
            {
                RemoveLocked(hex, session);
            }
        }
    }

    private void RemoveLocked(string hex, LiveSession session)
    {
        if (_byKey.TryGetValue(hex, out var sessions) && sessions.Remove(session))
        {
            _count--;
            if (sessions.Count == 0)
            {
                _byKey.Remove(hex);
            }
        }
    }

    /// <inheritdoc/>
    public void SessionEnded(ReadOnlySpan<byte> key)
    {
        var hex = Convert.ToHexString(key);
        List<LiveSession>? ended;
        lock (_lock)
        {
            Remember(hex, new Recent(null, null, _timeProvider.GetUtcNow()));
            if (_byKey.Remove(hex, out ended))
            {
                _count -= ended.Count;
            }
        }

        if (ended is not null)
        {
            EndAll(ended);
        }
    }

    /// <inheritdoc/>
    public void SessionRenewed(ReadOnlySpan<byte> oldKey, ReadOnlySpan<byte> newKey, string? userId)
    {
        var oldHex = Convert.ToHexString(oldKey);
        var newKeyBytes = newKey.ToArray();
        var newHex = Convert.ToHexString(newKeyBytes);
        List<LiveSession>? ended = null;
        lock (_lock)
        {
            Remember(oldHex, new Recent(newKeyBytes, userId, _timeProvider.GetUtcNow()));
            if (_byKey.Remove(oldHex, out var moved))
            {
                _count -= moved.Count;
                foreach (var session in moved)
                {
                    if (string.Equals(session.UserId, userId, StringComparison.Ordinal))
                    {
                        // The same user under a new ID (RegenerateId, a sign-in again, a sliding renewal): it follows.
                        session.Key = newKeyBytes;
                        session.KeyHex = newHex;
                        AddLocked(newHex, session);
                    }
                    else
                    {
                        (ended ??= []).Add(session);
                    }
                }
            }
        }

        if (ended is not null)
        {
            EndAll(ended);
        }
    }

    /// <summary>Ends sessions found ended by a check (expired, or gone from the store).</summary>
    private void EndChecked(LiveSession session)
    {
        lock (_lock)
        {
            if (session.KeyHex is { } hex)
            {
                RemoveLocked(hex, session);
            }
        }

        EndAll([session]);
    }

    // Outside the lock: the tokens' callbacks (closing a connection, a circuit's sign-out) run here, each of them.
    private void EndAll(IEnumerable<LiveSession> sessions)
    {
        foreach (var session in sessions)
        {
            try
            {
                if (session.End())
                {
                    LiveLog.LiveSessionEnded(_logger, session.Key is { } key ? Ids.SessionIds.ToPublicId(key) : "(new)");
                }
            }
            catch (AggregateException ex)
            {
                LiveLog.EndCallbackFailed(_logger, ex);
            }
        }
    }

    /// <summary>The sessions held now, for a check against the store.</summary>
    private List<LiveSession> Snapshot(Func<LiveSession, bool>? where = null)
    {
        var list = new List<LiveSession>();
        lock (_lock)
        {
            foreach (var sessions in _byKey.Values)
            {
                foreach (var session in sessions)
                {
                    if (where is null || where(session))
                    {
                        list.Add(session);
                    }
                }
            }
        }

        return list;
    }

    private bool IsRecent(Recent change) => _timeProvider.GetUtcNow() - change.At <= RecentLifetime;

    private void Remember(string hex, Recent change)
    {
        while (_recentOrder.TryPeek(out var first) && (_recentOrder.Count >= RecentCapacity || !IsRecent(first.Change)))
        {
            _recentOrder.Dequeue();
            if (_recent.TryGetValue(first.Key, out var current) && ReferenceEquals(current, first.Change))
            {
                _recent.Remove(first.Key);
            }
        }

        _recent[hex] = change;
        _recentOrder.Enqueue((hex, change));
    }

    /// <summary>An end (<see cref="NewKey"/> null) or a renewal of a key, and when it was reported.</summary>
    private sealed record Recent(byte[]? NewKey, string? UserId, DateTimeOffset At);
}
