namespace SessionMiddleware.OpenIdConnect.Internal;

/// <summary>
/// The token IDs (<c>jti</c>) of the logout tokens accepted, per issuer, each kept until its token could no longer pass
/// the <c>iat</c> window; bounded, oldest forgotten first. In memory, so per process: across servers a replayed token
/// can only end again the sessions its first delivery ended (or sessions of that provider session signed in since).
/// </summary>
internal sealed class LogoutTokenReplayCache(int capacity)
{
    private readonly Dictionary<(string Issuer, string Id), DateTimeOffset> _seen = [];
    private readonly PriorityQueue<(string Issuer, string Id), DateTimeOffset> _byExpiry = new();
    private readonly Lock _lock = new();

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _seen.Count;
            }
        }
    }

    /// <summary>Remembers a token until <paramref name="keepUntil"/>; false when it was seen already (a replay).</summary>
    public bool TryAdd(string issuer, string id, DateTimeOffset keepUntil, DateTimeOffset now)
    {
        lock (_lock)
        {
            Prune(now);
            if (_seen.TryGetValue((issuer, id), out var until) && until > now)
            {
                return false;
            }

            while (_seen.Count >= capacity && _byExpiry.TryDequeue(out var oldest, out var oldestUntil))
            {
                if (_seen.TryGetValue(oldest, out var kept) && kept == oldestUntil)
                {
                    _seen.Remove(oldest);
                }
            }

            _seen[(issuer, id)] = keepUntil;
            _byExpiry.Enqueue((issuer, id), keepUntil);
            return true;
        }
    }

    /// <summary>Forgets a token whose logout failed, so that the provider's retry is not taken for a replay.</summary>
    public void Remove(string issuer, string id)
    {
        lock (_lock)
        {
            // Its queue entry stays until it expires; Prune skips entries no longer in the dictionary.
            _seen.Remove((issuer, id));
        }
    }

    private void Prune(DateTimeOffset now)
    {
        while (_byExpiry.TryPeek(out var key, out var until) && until <= now)
        {
            _byExpiry.Dequeue();
            if (_seen.TryGetValue(key, out var kept) && kept <= now)
            {
                _seen.Remove(key);
            }
        }
    }
}
