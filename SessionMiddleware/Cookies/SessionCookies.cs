using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace SessionMiddleware.Cookies;

/// <summary>The session cookie on the wire: its name and attributes, reading it, setting and expiring it.</summary>
internal sealed class SessionCookies
{
    private readonly CookieBuilder _builder;
    private readonly SessionIdProtector _protector;
    private readonly TimeProvider _timeProvider;

    public SessionCookies(IOptions<ServerSideSessionOptions> options, SessionIdProtector protector, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(options);
        _builder = options.Value.Cookie;
        _protector = protector;
        _timeProvider = timeProvider;
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

        var options = BuildOptions(context);
        if (persistUntil is { } until)
        {
            options.MaxAge = null;
            options.Expires = until;
        }

        context.Response.Cookies.Append(Name, _protector.Protect(secretId), options);
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
