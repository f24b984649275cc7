using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SessionMiddleware.Cookies;

namespace SessionMiddleware.Authentication;

/// <summary>The cookie authentication schemes <c>AddTicketStore(...)</c> names; none named means every cookie scheme.</summary>
internal sealed class TicketStoreSchemes
{
    public HashSet<string> Names { get; } = new(StringComparer.Ordinal);
}

/// <summary>
/// Sets <see cref="CookieAuthenticationOptions.SessionStore"/> of the chosen cookie schemes to a <see cref="ServerSideTicketStore"/>,
/// and wraps their <see cref="CookieAuthenticationOptions.TicketDataFormat"/> in a <see cref="TicketReferenceFormat"/> so that a
/// sign-in the store keeps under a new reference gets an authentication cookie that carries it; with
/// <see cref="ServerSideSessionOptions.HeaderName"/>, their cookie manager in <see cref="HeaderSignIns"/>.
/// </summary>
internal sealed class TicketStorePostConfigure(
    IOptions<TicketStoreSchemes> schemes,
    IOptions<ServerSideSessionOptions> sessionOptions,
    IDataProtectionProvider dataProtection,
    IHttpContextAccessor httpContextAccessor,
    ILogger<ServerSideTicketStore> logger,
    IOptions<IdentityOptions> identityOptions,
    TimeProvider timeProvider,
    SessionCookies sessionIds) : IPostConfigureOptions<CookieAuthenticationOptions>
{
    /// <summary>The Data Protection purpose of the tickets kept in session rows (they carry claims and sometimes tokens).</summary>
    internal const string ProtectionPurpose = "SessionMiddleware.AuthenticationTicket.v1";

    public void PostConfigure(string? name, CookieAuthenticationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (name is null || !Applies(name))
        {
            return;
        }

        options.SessionStore = new ServerSideTicketStore(
            name,
            binds: !IsHelperScheme(name),
            sessionOptions.Value.UserIdClaimType,
            dataProtection.CreateProtector(ProtectionPurpose, name),
            httpContextAccessor,
            logger,
            // Identity's claim type of the security stamp (its default without Identity): what a change of credentials is told by.
            identityOptions.Value.ClaimsIdentity.SecurityStampClaimType);

        // This may run before or after the cookie handler's own post-configure (the order of the AddCookie and AddTicketStore
        // calls): without a format yet, the handler's default one is made here, as the handler would make it.
        if (options.TicketDataFormat is not TicketReferenceFormat)
        {
            options.TicketDataFormat = new TicketReferenceFormat(
                TicketReferenceFormat.InnerFor(name, options, dataProtection), name, httpContextAccessor, timeProvider);
        }

        // A client that carries its session in the header keeps no authentication cookie: the session is its sign-in.
        if (sessionOptions.Value.HeaderName is not null && options.CookieManager is not HeaderSignIns)
        {
            options.CookieManager = new HeaderSignIns(options.CookieManager ?? new ChunkingCookieManager(), sessionIds, name);
        }
    }

    private bool Applies(string scheme) =>
        schemes.Value.Names.Count == 0
            // Identity's "remember this device" cookie must outlive sign-out: it stays self-contained.
            ? scheme != IdentityConstants.TwoFactorRememberMeScheme
            : schemes.Value.Names.Contains(scheme);

    // Identity's steps before the sign-in proper: they keep a ticket but neither bind the session nor end it.
    private static bool IsHelperScheme(string scheme) =>
        scheme == IdentityConstants.ExternalScheme || scheme == IdentityConstants.TwoFactorUserIdScheme;
}
