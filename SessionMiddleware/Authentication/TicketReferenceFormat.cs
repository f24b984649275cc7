using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Http;
using SessionMiddleware.Cookies;

namespace SessionMiddleware.Authentication;

/// <summary>
/// The <see cref="CookieAuthenticationOptions.TicketDataFormat"/> of a scheme on the ticket store: the scheme's own format,
/// except that the authentication cookie of a sign-in the store kept under a new reference carries that reference.
/// </summary>
/// <remarks>
/// The cookie handler renews a sign-in under the key it read from the request's authentication cookie, and writes that
/// key into the new cookie, even when the request signed out first or signs another user in (aspnetcore#55634). The
/// store keeps such a sign-in under a new reference instead (so the earlier cookie no longer matches) and records the
/// replacement in the request; this format puts it into the cookie the handler protects.
/// </remarks>
internal sealed class TicketReferenceFormat : ISecureDataFormat<AuthenticationTicket>
{
    /// <summary>The claim of the cookie handler's reference ticket that carries the ticket store's key.</summary>
    internal const string ReferenceClaimType = "Microsoft.AspNetCore.Authentication.Cookies-SessionId";

    // The cookie handler's own format and Data Protection purpose, for a scheme whose format is not set yet.
    private const string CookieHandlerPurpose = "Microsoft.AspNetCore.Authentication.Cookies.CookieAuthenticationMiddleware";

    private static readonly object ReplacementsKey = new();

    private readonly ISecureDataFormat<AuthenticationTicket> _inner;
    private readonly string _scheme;
    private readonly IHttpContextAccessor _httpContextAccessor;

    // (purpose, cookie value) -> the reference ticket it protects, for the cookies seen in the last minute; each request
    // gets its own copy: the cookie handler and claims transformations change the ticket they are given.
    private readonly RecentlyUnprotected<(string? Purpose, string Text), AuthenticationTicket> _unprotected;

    public TicketReferenceFormat(ISecureDataFormat<AuthenticationTicket> inner, string scheme, IHttpContextAccessor httpContextAccessor, TimeProvider? timeProvider = null)
    {
        _inner = inner;
        _scheme = scheme;
        _httpContextAccessor = httpContextAccessor;
        _unprotected = new(timeProvider ?? TimeProvider.System, static ticket => ticket.Clone());
    }

    /// <summary>How many cookies' tickets are kept now (for tests).</summary>
    internal int KeptCount => _unprotected.Count;

    /// <summary>The format the cookie handler would use: the scheme's own, or the handler's default when none is set yet.</summary>
    public static ISecureDataFormat<AuthenticationTicket> InnerFor(string scheme, CookieAuthenticationOptions options, IDataProtectionProvider dataProtection) =>
        options.TicketDataFormat
            ?? new TicketDataFormat((options.DataProtectionProvider ?? dataProtection).CreateProtector(CookieHandlerPurpose, scheme, "v2"));

    /// <summary>Records that this request's sign-in of <paramref name="scheme"/> is kept under <paramref name="newReference"/>, not the cookie's <paramref name="oldReference"/>.</summary>
    public static void Replace(HttpContext httpContext, string scheme, string oldReference, string newReference)
    {
        if (httpContext.Items[ReplacementsKey] is not Dictionary<(string, string), string> replacements)
        {
            replacements = [];
            httpContext.Items[ReplacementsKey] = replacements;
        }

        replacements[(scheme, oldReference)] = newReference;
    }

    public string Protect(AuthenticationTicket data) => _inner.Protect(WithCurrentReference(data));

    public string Protect(AuthenticationTicket data, string? purpose) => _inner.Protect(WithCurrentReference(data), purpose);

    public AuthenticationTicket? Unprotect(string? protectedText) => Unprotect(protectedText, null);

    public AuthenticationTicket? Unprotect(string? protectedText, string? purpose)
    {
        if (protectedText is null)
        {
            return _inner.Unprotect(protectedText, purpose);
        }

        if (string.Equals(protectedText, HeaderSignIns.Marker, StringComparison.Ordinal))
        {
            // A request that carries its session in the header: the session's own sign-in of the scheme.
            return HeaderSignIns.ReferenceTicket(_scheme);
        }

        if (_unprotected.TryGet((purpose, protectedText), out var kept))
        {
            return kept;
        }

        var ticket = _inner.Unprotect(protectedText, purpose);
        if (ticket is not null)
        {
            _unprotected.Keep((purpose, protectedText), ticket);
        }

        return ticket;
    }

    private AuthenticationTicket WithCurrentReference(AuthenticationTicket ticket)
    {
        if (_httpContextAccessor.HttpContext?.Items[ReplacementsKey] is not Dictionary<(string, string), string> replacements
            || ticket.Principal.FindFirst(ReferenceClaimType) is not { } claim
            || !replacements.TryGetValue((_scheme, claim.Value), out var reference))
        {
            return ticket;
        }

        var principal = new ClaimsPrincipal();
        foreach (var identity in ticket.Principal.Identities)
        {
            var copy = identity.Clone();
            if (copy.FindFirst(ReferenceClaimType) is { } old)
            {
                copy.RemoveClaim(old);
                copy.AddClaim(new Claim(ReferenceClaimType, reference, old.ValueType, old.Issuer, old.OriginalIssuer));
            }

            principal.AddIdentity(copy);
        }

        return new AuthenticationTicket(principal, ticket.Properties, ticket.AuthenticationScheme);
    }
}
