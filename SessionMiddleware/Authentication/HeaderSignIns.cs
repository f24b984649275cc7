using System.Security.Claims;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Http;
using SessionMiddleware.Cookies;
using SessionMiddleware.Middleware;
using SessionMiddleware.Session;

namespace SessionMiddleware.Authentication;

/// <summary>
/// The <see cref="CookieAuthenticationOptions.CookieManager"/> of a scheme on the ticket store, for clients that carry the
/// session in <see cref="ServerSideSessionOptions.HeaderName"/>: such a client keeps no cookies, and needs no
/// authentication cookie either, since the session row holds the sign-in and the cookie only refers to it. For a request
/// that sent the session header, the cookie handler reads a stand-in (<see cref="Marker"/>) that
/// <see cref="TicketReferenceFormat"/> turns into a reference to the session's sign-in of the scheme, and its writes and
/// deletes of the authentication cookie are left out; other requests use the scheme's cookies as before.
/// </summary>
internal sealed class HeaderSignIns(ICookieManager inner, SessionCookies sessionIds, string scheme) : ICookieManager
{
    /// <summary>
    /// What the cookie handler reads as the authentication cookie of a header request, and the reference it then names;
    /// random per process so that no cookie a client sends can be it.
    /// </summary>
    public static readonly string Marker = "header-session-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    /// <summary>The reference ticket <see cref="Marker"/> stands for: the session's sign-in of <paramref name="ticketScheme"/>, found by the ticket store.</summary>
    public static AuthenticationTicket ReferenceTicket(string ticketScheme) => new(
        new ClaimsPrincipal(new ClaimsIdentity([new Claim(TicketReferenceFormat.ReferenceClaimType, Marker)], ticketScheme)), ticketScheme);

    /// <summary>The ticket store's key for <paramref name="key"/>: for <see cref="Marker"/>, the reference of the session's sign-in of the scheme.</summary>
    public static string Resolve(string key, ServerSideSession session, string ticketScheme) =>
        string.Equals(key, Marker, StringComparison.Ordinal) && session.GetTicket(ticketScheme) is { } kept ? kept.Id : key;

    public string? GetRequestCookie(HttpContext context, string key)
    {
        if (!sessionIds.CameWithHeader(context.Request))
        {
            return inner.GetRequestCookie(context, key);
        }

        if (string.IsNullOrEmpty(context.Request.Headers[sessionIds.HeaderName!]))
        {
            return null;
        }

        // A session the middleware loaded already says whether it holds a sign-in; otherwise (authentication runs first)
        // the ticket store loads it, and a session without one is anonymous there.
        var loaded = RequestSession.Of(context)?.Session;
        return loaded is null || loaded.GetTicket(scheme) is not null ? Marker : null;
    }

    public void AppendResponseCookie(HttpContext context, string key, string? value, CookieOptions options)
    {
        if (!sessionIds.CameWithHeader(context.Request))
        {
            inner.AppendResponseCookie(context, key, value, options);
        }
    }

    public void DeleteCookie(HttpContext context, string key, CookieOptions options)
    {
        if (!sessionIds.CameWithHeader(context.Request))
        {
            inner.DeleteCookie(context, key, options);
        }
    }
}
