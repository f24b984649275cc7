using SessionMiddleware.Concurrency;

namespace SessionMiddleware.Cookies;

/// <summary>How long and how many of the cookies Data Protection unprotected are kept (<see cref="RecentlyUnprotected{TKey, TValue}"/>).</summary>
internal static class RecentlyUnprotected
{
    /// <summary>The most cookies kept; the whole set is dropped when it is full.</summary>
    public const int MaxKept = 10_000;

    /// <summary>
    /// How long a cookie is kept after it was unprotected: a Data Protection key revoked meanwhile stops the cookies it
    /// protected within this time (what the cookie leads to, the session row, is checked on every request regardless).
    /// </summary>
    public static readonly TimeSpan KeptFor = TimeSpan.FromMinutes(1);
}

/// <summary>
/// What Data Protection unprotected from the cookies seen in the last minute, by the exact cookie: a browser sends the same
/// cookie with every request, so its unprotect (12-15 µs) is paid once a minute instead of every time. Each answer is a
/// copy (<paramref name="copy"/>): callers may change what they get.
/// </summary>
internal sealed class RecentlyUnprotected<TKey, TValue>(TimeProvider timeProvider, Func<TValue, TValue> copy)
    where TKey : notnull
{
    private readonly BoundedCache<TKey, (TValue Value, long Until)> _kept = new(RecentlyUnprotected.MaxKept);

    /// <summary>How many cookies are kept now (for tests).</summary>
    public int Count => _kept.Count;

    /// <summary>A copy of what <paramref name="cookie"/> was unprotected to, if that was less than a minute ago.</summary>
    public bool TryGet(TKey cookie, out TValue value)
    {
        if (_kept.TryGetValue(cookie, out var kept) && timeProvider.GetTimestamp() < kept.Until)
        {
            value = copy(kept.Value);
            return true;
        }

        value = default!;
        return false;
    }

    /// <summary>Keeps a copy of what <paramref name="cookie"/> was just unprotected to.</summary>
    public void Keep(TKey cookie, TValue value)
    {
        _kept.Set(cookie, (copy(value), timeProvider.GetTimestamp() + (long)(RecentlyUnprotected.KeptFor.TotalSeconds * timeProvider.TimestampFrequency)));
    }
}
