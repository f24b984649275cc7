using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using SessionMiddleware.Logging;

namespace SessionMiddleware.Cookies;

/// <summary>
/// The session ID on the wire: the cookie (its name and attributes, reading it, setting and expiring it), or, for a request
/// that sends <see cref="ServerSideSessionOptions.HeaderName"/>, that header instead. Every read and write of the ID goes
/// through here, so the request path, the ticket store and live connections treat both alike.
/// </summary>
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
        HeaderName = options.Value.HeaderName;
        _headerAlsoSetsCookie = options.Value.HeaderAlsoSetsCookie;
    }

    // ServerSideSessionOptions.HeaderAlsoSetsCookie: a header request's new, renewed or ended ID goes into the cookie too.
    private readonly bool _headerAlsoSetsCookie;

    public string Name { get; }

    /// <summary>The header that may carry the ID instead of the cookie, or null (cookie only).</summary>
    public string? HeaderName { get; }

    /// <summary>
    /// Whether the request sent the session header (even empty, as a client without a session does): its session is then
    /// carried by the header alone, whatever cookie it sent too.
    /// </summary>
    public bool CameWithHeader(HttpRequest request) => HeaderName is not null && request.Headers.ContainsKey(HeaderName);

    /// <summary>
    /// The secret ID the request's session header, or else its cookie, holds. <see langword="null"/> without one (or with
    /// an empty header; <paramref name="rejectedReason"/> null too) or for a value that is not a valid one of ours
    /// (<paramref name="rejectedReason"/> says why).
    /// </summary>
    public byte[]? ReadSecretId(HttpRequest request, out string? rejectedReason)
    {
        rejectedReason = null;
        string? value;
        if (CameWithHeader(request))
        {
            // Sent more than once, the values come joined by a comma, which no valid value holds.
            value = request.Headers[HeaderName!].ToString();
            if (value.Length == 0)
            {
                return null;
            }
        }
        else
        {
            value = request.Cookies[Name];
            if (value is null)
            {
                return null;
            }
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

        if (CameWithHeader(context.Request))
        {
            // The client keeps the latest value and sends it back; a cookie would only be one more copy to steal, unless
            // the app asked for both.
            context.Response.Headers[HeaderName!] = _protector.Protect(secretId);
            NoStore(context.Response.Headers);
            if (!_headerAlsoSetsCookie)
            {
                return;
            }
        }

        AppendCookie(context, secretId, persistUntil);
    }

    private void AppendCookie(HttpContext context, byte[] secretId, DateTimeOffset? persistUntil)
    {
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
        NoStore(context.Response.Headers);
    }

    // A response that carries a session ID is never cached.
    private static void NoStore(IHeaderDictionary headers)
    {
        headers.CacheControl = "no-cache,no-store";
        headers.Pragma = "no-cache";
        headers[HeaderNames.Expires] = "-1";
    }

    /// <summary>
    /// A persistent cookie is sent again whenever the access is recorded, so its expiry slides with the server's. The
    /// header's value has no expiry of its own: nothing is sent for it (but the cookie, with <see cref="ServerSideSessionOptions.HeaderAlsoSetsCookie"/>).
    /// </summary>
    public void Refresh(HttpContext context, byte[]? secretId, DateTimeOffset? persistUntil = null)
    {
        if ((_builder.MaxAge is null && persistUntil is null) || secretId is null || context.Response.HasStarted)
        {
            return;
        }

        if (!CameWithHeader(context.Request) || _headerAlsoSetsCookie)
        {
            AppendCookie(context, secretId, persistUntil);
        }
    }

    /// <summary>
    /// Expires the cookie the request presented, unless the response has started; for a request that sent the header, the
    /// response header goes back empty: the client forgets its value.
    /// </summary>
    public void Expire(HttpContext context)
    {
        if (context.Response.HasStarted)
        {
            return;
        }

        var cameWithHeader = CameWithHeader(context.Request);
        if (cameWithHeader)
        {
            context.Response.Headers[HeaderName!] = string.Empty;
        }

        if ((!cameWithHeader || _headerAlsoSetsCookie) && context.Request.Cookies.ContainsKey(Name))
        {
            context.Response.Cookies.Delete(Name, BuildOptions(context));
        }
    }
}
