using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using SessionMiddleware.Logging;

namespace SessionMiddleware.Cookies;

/// <summary>The session cookie on the wire: its name and attributes, reading it, setting and expiring it.</summary>
internal sealed class SessionCookies
{
    private readonly CookieBuilder _builder;
    private readonly SessionIdProtector _protector;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger<SessionCookies> _logger;

    // A Secure cookie on plain HTTP is a configuration mistake: said once, not on every request.
    private int _warnedSecureOverHttp;

    public SessionCookies(IOptions<ServerSideSessionOptions> options, SessionIdProtector protector, TimeProvider timeProvider, ILogger<SessionCookies> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _builder = options.Value.Cookie;
        _protector = protector;
        _timeProvider = timeProvider;
        _logger = logger;
        Name = _builder.Name!;
    }

    public string Name { get; }

    /// <summary>
    /// The secret ID the request's cookie holds. <see langword="null"/> without a cookie (<paramref name="rejectedReason"/>
    /// null too) or for a cookie that is not a valid one of ours (<paramref name="rejectedReason"/> says why).
    /// </summary>
    public byte[]? ReadSecretId(HttpRequest request, out string? rejectedReason)
    {
        rejectedReason = null;
        var value = request.Cookies[Name];
        if (value is null)
        {
            return null;
        }

        var secretId = _protector.Unprotect(value, out var reason);
        if (secretId is null)
        {
            rejectedReason = reason ?? "invalid";
        }

        return secretId;
    }

    /// <summary>The cookie's attributes for this request; a <c>__Host-</c> or <c>__Secure-</c> name is always Secure.</summary>
    public CookieOptions BuildOptions(HttpContext context)
    {
        var cookie = _builder.Build(context, _timeProvider.GetUtcNow());
        if (Name.StartsWith("__Host-", StringComparison.Ordinal) || Name.StartsWith("__Secure-", StringComparison.Ordinal))
        {
            cookie.Secure = true;
        }

        return cookie;
    }

    /// <summary>
    /// Sends the cookie for <paramref name="secretId"/> unless the response has started; a response that sets it is never
    /// cached. With <paramref name="persistUntil"/> (a remembered sign-in) the cookie outlives the browser until then.
    /// </summary>
    public void Set(HttpContext context, byte[] secretId, DateTimeOffset? persistUntil = null)
    {
        if (context.Response.HasStarted)
        {
            return;
        }

        var cookie = BuildOptions(context);
        if (persistUntil is { } until)
        {
            cookie.MaxAge = null;
            cookie.Expires = until;
        }

        if (cookie.Secure && !context.Request.IsHttps && Interlocked.Exchange(ref _warnedSecureOverHttp, 1) == 0)
        {
            var policy = Name.StartsWith("__", StringComparison.Ordinal) ? $"{_builder.SecurePolicy}, and the cookie name's prefix requires Secure" : _builder.SecurePolicy.ToString();
            Log.SecureCookieOverHttp(_logger, Name, policy, context.Request.Host.Value ?? "(no host)");
        }

        context.Response.Cookies.Append(Name, _protector.Protect(secretId), cookie);
        var headers = context.Response.Headers;
        headers.CacheControl = "no-cache,no-store";
        headers.Pragma = "no-cache";
        headers[HeaderNames.Expires] = "-1";
    }

    /// <summary>A persistent cookie is sent again whenever the access is recorded, so its expiry slides with the server's.</summary>
    public void Refresh(HttpContext context, byte[]? secretId, DateTimeOffset? persistUntil = null)
    {
        if ((_builder.MaxAge is not null || persistUntil is not null) && secretId is not null)
        {
            Set(context, secretId, persistUntil);
        }
    }

    /// <summary>Expires the cookie the request presented, unless the response has started.</summary>
    public void Expire(HttpContext context)
    {
        if (!context.Response.HasStarted && context.Request.Cookies.ContainsKey(Name))
        {
            context.Response.Cookies.Delete(Name, BuildOptions(context));
        }
    }
}
