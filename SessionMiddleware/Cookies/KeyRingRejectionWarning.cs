using Microsoft.Extensions.Logging;
using SessionMiddleware.Logging;

namespace SessionMiddleware.Cookies;

/// <summary>
/// Turns cookies another key ring protected into a Warning at most every <see cref="Interval"/>, with the count since
/// the last one: each alone is only a Debug line, but again and again they mean servers that do not share their Data
/// Protection keys, where users silently lose their sessions.
/// </summary>
internal sealed class KeyRingRejectionWarning(TimeProvider timeProvider)
{
    /// <summary>The shortest time between two warnings.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromMinutes(5);

    private readonly object _lock = new();
    private long _count;
    private DateTimeOffset _since;
    private DateTimeOffset? _lastWarning;

    /// <summary>Counts one rejected cookie; logs the warning when none was logged within <see cref="Interval"/>.</summary>
    public void Record(ILogger logger)
    {
        var now = timeProvider.GetUtcNow();
        long count;
        DateTimeOffset since;
        lock (_lock)
        {
            if (_count++ == 0 && _lastWarning is null)
            {
                _since = now;
            }

            if (_lastWarning is { } last && now - last < Interval)
            {
                return;
            }

            count = _count;
            since = _since;
            _count = 0;
            _since = now;
            _lastWarning = now;
        }

        Log.CookiesFromAnotherKeyRing(logger, count, since, Interval);
    }
}
