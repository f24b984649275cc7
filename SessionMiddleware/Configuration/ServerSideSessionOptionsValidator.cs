using Microsoft.Extensions.Options;
using SessionMiddleware.Storage;

namespace SessionMiddleware.Configuration;

/// <summary>
/// Checks <see cref="ServerSideSessionOptions"/> when the host starts; each failure names the option and the rule.
/// </summary>
internal sealed class ServerSideSessionOptionsValidator : IValidateOptions<ServerSideSessionOptions>
{
    /// <summary>The longest <see cref="ServerSideSessionOptions.IOTimeout"/>: the timer's range (about 49.7 days).</summary>
    internal static readonly TimeSpan MaxIOTimeout = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    public ValidateOptionsResult Validate(string? name, ServerSideSessionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        const string prefix = nameof(ServerSideSessionOptions) + ".";

        if (string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            failures.Add($"{prefix}{nameof(options.ConnectionString)} is required.");
        }

        if (!SessionTableSchema.IsValidTableName(options.TableName))
        {
            failures.Add($"{prefix}{nameof(options.TableName)} '{options.TableName}' is not allowed: it must match ^[A-Za-z_][A-Za-z0-9_]{{0,62}}$ (a letter or underscore, then up to 62 letters, digits or underscores).");
        }

        ValidateTimeouts(options, failures);
        ValidateStore(options, failures);

        if (options.NewSessionLimit < 0)
        {
            failures.Add($"{prefix}{nameof(options.NewSessionLimit)} must not be negative (was {options.NewSessionLimit}; 0 turns the limit off).");
        }

        if (options.NewSessionLimitWindow <= TimeSpan.Zero || options.NewSessionLimitWindow > ServerSideSessionDefaults.MaxNewSessionLimitWindow)
        {
            failures.Add($"{prefix}{nameof(options.NewSessionLimitWindow)} must be positive and at most {ServerSideSessionDefaults.MaxNewSessionLimitWindow} (was {options.NewSessionLimitWindow}).");
        }

        ValidateSessionCap(options, failures);
        ValidateCookie(options, failures);
        ValidateHeader(options.HeaderName, failures);
        if (options.HeaderAlsoSetsCookie && options.HeaderName is null)
        {
            failures.Add($"{prefix}{nameof(options.HeaderAlsoSetsCookie)} is true but {nameof(options.HeaderName)} is null: set {nameof(options.HeaderName)} (for example \"X-Session\"), or leave {nameof(options.HeaderAlsoSetsCookie)} false.");
        }

        if (options.Events is null)
        {
            failures.Add($"{prefix}{nameof(options.Events)} is required (leave the default instance, or set a {nameof(ServerSideSessionEvents)}).");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>The timeouts and intervals of expiry, access recording and cleanup.</summary>
    private static void ValidateTimeouts(ServerSideSessionOptions options, List<string> failures)
    {
        const string prefix = nameof(ServerSideSessionOptions) + ".";
        if (options.IdleTimeout <= TimeSpan.Zero)
        {
            failures.Add($"{prefix}{nameof(options.IdleTimeout)} must be positive (was {options.IdleTimeout}).");
        }
        else if (options.IdleTimeout > ServerSideSessionDefaults.MaxTimeout)
        {
            failures.Add(TooLong(nameof(options.IdleTimeout), options.IdleTimeout));
        }

        if (options.AbsoluteTimeout is { } absolute && absolute <= TimeSpan.Zero)
        {
            failures.Add($"{prefix}{nameof(options.AbsoluteTimeout)} must be positive when set (was {absolute}).");
        }
        else if (options.AbsoluteTimeout > ServerSideSessionDefaults.MaxTimeout)
        {
            failures.Add(TooLong(nameof(options.AbsoluteTimeout), options.AbsoluteTimeout.Value));
        }

        if (options.CleanupInterval <= TimeSpan.Zero)
        {
            failures.Add($"{prefix}{nameof(options.CleanupInterval)} must be positive (was {options.CleanupInterval}).");
        }

        if (options.CleanupBatchSize <= 0)
        {
            failures.Add($"{prefix}{nameof(options.CleanupBatchSize)} must be positive (was {options.CleanupBatchSize}).");
        }

        if (options.TouchInterval < TimeSpan.Zero)
        {
            failures.Add($"{prefix}{nameof(options.TouchInterval)} must not be negative (was {options.TouchInterval}).");
        }
        else if (options.IdleTimeout > TimeSpan.Zero && options.TouchInterval >= options.IdleTimeout)
        {
            failures.Add($"{prefix}{nameof(options.TouchInterval)} ({options.TouchInterval}) must be less than {nameof(options.IdleTimeout)} ({options.IdleTimeout}), or sessions in use would expire.");
        }
    }

    /// <summary>The options of the store calls: sizes and timeouts, and the SQLite store's row cache.</summary>
    private static void ValidateStore(ServerSideSessionOptions options, List<string> failures)
    {
        const string prefix = nameof(ServerSideSessionOptions) + ".";
        if (options.MaxSessionBytes <= 0)
        {
            failures.Add($"{prefix}{nameof(options.MaxSessionBytes)} must be positive (was {options.MaxSessionBytes}).");
        }

        if (options.BusyTimeout <= TimeSpan.Zero)
        {
            failures.Add($"{prefix}{nameof(options.BusyTimeout)} must be positive (was {options.BusyTimeout}).");
        }

        if (options.IOTimeout <= TimeSpan.Zero)
        {
            failures.Add($"{prefix}{nameof(options.IOTimeout)} must be positive (was {options.IOTimeout}).");
        }
        else if (options.IOTimeout > MaxIOTimeout)
        {
            // CancellationTokenSource.CancelAfter takes at most 2^32 - 2 ms: above it every store call would fail.
            failures.Add($"{prefix}{nameof(options.IOTimeout)} must be at most {MaxIOTimeout} (was {options.IOTimeout}).");
        }

        if (options.RowCacheSize < 0)
        {
            failures.Add($"{prefix}{nameof(options.RowCacheSize)} must not be negative (was {options.RowCacheSize}; 0 turns the row cache off).");
        }
    }

    private static void ValidateCookie(ServerSideSessionOptions options, List<string> failures)
    {
        const string prefix = nameof(ServerSideSessionOptions) + ".";
        if (options.Cookie is null)
        {
            failures.Add($"{prefix}{nameof(options.Cookie)} is required.");
        }
        else if (string.IsNullOrWhiteSpace(options.Cookie.Name))
        {
            failures.Add($"{prefix}{nameof(options.Cookie)}.{nameof(options.Cookie.Name)} is required.");
        }
        else if (options.Cookie.Expiration is not null)
        {
            failures.Add($"{prefix}{nameof(options.Cookie)}.{nameof(options.Cookie.Expiration)} is not supported: the session's lifetime is {nameof(options.IdleTimeout)}; use {nameof(options.Cookie)}.{nameof(options.Cookie.MaxAge)} for a persistent cookie.");
        }
        else
        {
            var cookie = options.Cookie;
            if (cookie.MaxAge is { } maxAge && maxAge <= TimeSpan.Zero)
            {
                failures.Add($"{prefix}{nameof(options.Cookie)}.{nameof(cookie.MaxAge)} must be positive when set (was {maxAge}).");
            }

            var hostPrefix = cookie.Name.StartsWith("__Host-", StringComparison.Ordinal);
            if ((hostPrefix || cookie.Name.StartsWith("__Secure-", StringComparison.Ordinal)) && cookie.SecurePolicy == Microsoft.AspNetCore.Http.CookieSecurePolicy.None)
            {
                failures.Add($"{prefix}{nameof(options.Cookie)}.{nameof(cookie.SecurePolicy)} must not be None for a cookie named '{cookie.Name}': browsers accept that prefix only on Secure cookies.");
            }

            if (hostPrefix && (cookie.Domain is not null || cookie.Path != "/"))
            {
                failures.Add($"{prefix}{nameof(options.Cookie)} named '{cookie.Name}' needs {nameof(cookie.Path)} \"/\" and no {nameof(cookie.Domain)}: browsers reject a __Host- cookie otherwise.");
            }
        }
    }

    /// <summary>Headers that already mean something to HTTP, browsers or proxies; the session header must not be one of them.</summary>
    private static readonly System.Collections.Frozen.FrozenSet<string> ReservedHeaders = System.Collections.Frozen.FrozenSet.ToFrozenSet(
        [
            "Cookie", "Cookie2", "Set-Cookie", "Set-Cookie2", "Authorization", "WWW-Authenticate", "Host", "Connection",
            "Keep-Alive", "Transfer-Encoding", "TE", "Trailer", "Upgrade", "Content-Length", "Content-Type", "Content-Encoding",
            "Cache-Control", "Pragma", "Expires", "Date", "Location", "Retry-After", "Vary", "Via", "Origin", "Referer",
            "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Accept", "Accept-Encoding",
            "Accept-Language", "User-Agent", "Range", "Expect", "Max-Forwards", "DNT",
        ],
        StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// <see cref="ServerSideSessionOptions.HeaderName"/>: off, or a header token of its own, one a browser lets a script send
    /// (fetch forbids <c>Sec-</c> and <c>Proxy-</c> names) and one no proxy or server consumes.
    /// </summary>
    private static void ValidateHeader(string? headerName, List<string> failures)
    {
        const string option = nameof(ServerSideSessionOptions) + "." + nameof(ServerSideSessionOptions.HeaderName);
        if (headerName is null)
        {
            return;
        }

        if (headerName.Length == 0 || headerName.Length > 64 || !headerName.All(IsTokenChar))
        {
            failures.Add($"{option} '{headerName}' is not a header name: use 1 to 64 letters, digits or !#$%&'*+-.^_`|~ (for example \"X-Session\"), or null to carry the session in the cookie only.");
        }
        else if (ReservedHeaders.Contains(headerName) || headerName.StartsWith("Sec-", StringComparison.OrdinalIgnoreCase)
            || headerName.StartsWith("Proxy-", StringComparison.OrdinalIgnoreCase) || headerName.StartsWith("Access-Control-", StringComparison.OrdinalIgnoreCase))
        {
            failures.Add($"{option} '{headerName}' is a header HTTP, browsers or proxies use already: choose a name of its own, such as \"X-Session\".");
        }
    }

    // RFC 9110 tchar.
    private static bool IsTokenChar(char c) => char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c, StringComparison.Ordinal);

    private static void ValidateSessionCap(ServerSideSessionOptions options, List<string> failures)
    {
        const string prefix = nameof(ServerSideSessionOptions) + ".";
        if (options.MaxSessionsPerUser < 0)
        {
            failures.Add($"{prefix}{nameof(options.MaxSessionsPerUser)} must not be negative (was {options.MaxSessionsPerUser}; 0 means no cap).");
        }

        if (!Enum.IsDefined(options.WhenMaxSessionsReached))
        {
            failures.Add($"{prefix}{nameof(options.WhenMaxSessionsReached)} must be EndLeastRecentlyUsed or RefuseSignIn (was {(int)options.WhenMaxSessionsReached}).");
        }
    }

    // In configuration a bare number is read as days ("20" is 20 days), so a value this long is most likely a unit mistake.
    private static string TooLong(string option, TimeSpan value) =>
        $"{nameof(ServerSideSessionOptions)}.{option} is {value} ({value.TotalDays:0} days), more than a year. " +
        $"In configuration a time span is written as \"hh:mm:ss\": \"00:20:00\" is 20 minutes, while a bare \"20\" means 20 days.";
}
