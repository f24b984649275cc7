using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using SessionMiddleware.Authentication;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Keeps ASP.NET Core cookie authentication's sign-ins in the server-side session.</summary>
public static class ServerSideSessionTicketStoreExtensions
{
    /// <summary>
    /// Keeps the authentication tickets of cookie authentication (<c>AddCookie</c>, and ASP.NET Core Identity's
    /// application, external and two-factor cookies) in the browser's server-side session row, so that ending the
    /// session — sign-out, <see cref="SessionMiddleware.ISessionManager"/> revoke, expiry, cleanup — signs the browser out
    /// on its next request. The authentication cookie then carries only a reference. A sign-in binds the session to the
    /// user (<see cref="SessionMiddleware.ServerSideSessionOptions.UserIdClaimType"/>) and renews its ID. Needs
    /// <c>app.UseServerSideSessions()</c> in the pipeline, before or after <c>app.UseAuthentication()</c>.
    /// </summary>
    /// <remarks>
    /// Also registers the sign-in policies that rest on the ticket store: with ASP.NET Core Identity, a change of the
    /// user's security stamp (password change or reset, two-factor changes, <c>UpdateSecurityStampAsync</c>) ends the
    /// user's other sessions at once (an <c>IUserValidator&lt;TUser&gt;</c>); and a policy's <c>RequireRecentSignIn</c>
    /// failure challenges (sign in again) instead of forbidding (an <c>IAuthorizationMiddlewareResultHandler</c> around
    /// the one registered before; a handler registered after this call replaces it).
    /// </remarks>
    /// <param name="builder">The builder <c>AddServerSideSessions(...)</c> returned.</param>
    /// <param name="authenticationSchemes">
    /// The cookie schemes to keep; none for every cookie scheme except Identity's two-factor "remember this device"
    /// cookie, which must outlive sign-out.
    /// </param>
    /// <returns>The builder, for chaining.</returns>
    public static IServerSideSessionsBuilder AddTicketStore(this IServerSideSessionsBuilder builder, params string[] authenticationSchemes)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(authenticationSchemes);
        var services = builder.Services;
        services.AddHttpContextAccessor();
        services.Configure<TicketStoreSchemes>(s => s.Names.UnionWith(authenticationSchemes));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IPostConfigureOptions<CookieAuthenticationOptions>, TicketStorePostConfigure>());
        SessionMiddleware.SignIn.SignInPolicyRegistration.AddSignInPolicies(services);
        return builder;
    }
}
