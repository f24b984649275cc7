using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SessionMiddleware.Diagnostics;
using SessionMiddleware.Logging;

namespace SessionMiddleware.Middleware;

/// <summary>
/// <see cref="ServerSideSessionOptions.NewSessionLimit"/> as the request path asks it: whether the limit applies to a
/// request's client, and whether that client may create a new session now (a refusal logged and counted).
/// </summary>
internal sealed class NewSessionGate
{
    private readonly ServerSideSessionOptions _options;
    private readonly ILogger _logger;
    private readonly SessionMetrics _metrics;
    private int _forwardedHeadersWarned;

    public NewSessionGate(IOptions<ServerSideSessionOptions> options, TimeProvider timeProvider, ILogger<ServerSideSessionMiddleware> logger, SessionMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        _logger = logger;
        _metrics = metrics;
        Limiter = _options.NewSessionLimit > 0 ? new NewSessionLimiter(_options.NewSessionLimit, _options.NewSessionLimitWindow, timeProvider) : null;
    }

    /// <summary>The limiter of <see cref="ServerSideSessionOptions.NewSessionLimit"/>; <see langword="null"/> when it is off.</summary>
    public NewSessionLimiter? Limiter { get; }

    /// <summary>
    /// Whether the request's client may create a new session now (<see cref="ServerSideSessionOptions.NewSessionLimit"/>);
    /// a refusal is logged and counted, with the time until the client's window ends.
    /// </summary>
    public bool MayCreate(HttpContext context, out TimeSpan retryAfter)
    {
        retryAfter = TimeSpan.Zero;
        if (Limiter is null)
        {
            return true;
        }

        switch (Limiter.TryAcquire(context, out retryAfter))
        {
            case NewSessionLimiter.Decision.Allowed:
                return true;

            case NewSessionLimiter.Decision.AllowedTableFull:
                Log.NewSessionLimitTableFull(_logger, Limiter.MaxClients);
                return true;

            case NewSessionLimiter.Decision.FirstRefusal:
                Log.NewSessionLimitReached(_logger, NewSessionLimiter.ClientName(context.Connection.RemoteIpAddress), _options.NewSessionLimit, _options.NewSessionLimitWindow, retryAfter);
                break;

            default:
                if (_logger.IsEnabled(LogLevel.Debug))
                {
                    Log.NewSessionRefused(_logger, NewSessionLimiter.ClientName(context.Connection.RemoteIpAddress));
                }

                break;
        }

        _metrics.SessionRateLimited();
        return false;
    }

    /// <summary>
    /// Whether a new session of the request's client counts against <see cref="ServerSideSessionOptions.NewSessionLimit"/>:
    /// not when the limit is off, nor (unless <see cref="ServerSideSessionOptions.NewSessionLimitIncludesPrivateAddresses"/>)
    /// from a loopback or private address, where a proxy whose forwarded headers are not applied would make every client
    /// one. The first such request that carries X-Forwarded-For is worth one warning.
    /// </summary>
    public bool Applies(HttpContext context)
    {
        if (Limiter is null)
        {
            return false;
        }

        var address = context.Connection.RemoteIpAddress;
        if (_options.NewSessionLimitIncludesPrivateAddresses || !NewSessionLimiter.IsLoopbackOrPrivate(address))
        {
            return true;
        }

        if (Volatile.Read(ref _forwardedHeadersWarned) == 0 &&
            context.Request.Headers.ContainsKey("X-Forwarded-For") &&
            Interlocked.Exchange(ref _forwardedHeadersWarned, 1) == 0)
        {
            Log.ForwardedHeadersNotApplied(_logger, address?.ToString() ?? "(no address)");
        }

        return false;
    }
}
