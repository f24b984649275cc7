using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SessionMiddleware;
using SessionMiddleware.OpenIdConnect;
using SessionMiddleware.OpenIdConnect.Internal;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the endpoint of OpenID Connect Back-Channel Logout 1.0 for server-side sessions.</summary>
public static class BackChannelLogoutEndpointRouteBuilderExtensions
{
    /// <summary>The default path of the endpoint: <c>/signout-backchannel</c>.</summary>
    public const string DefaultPattern = "/signout-backchannel";

    /// <summary>
    /// Maps the endpoint the identity provider posts its logout tokens to (register its URL as the client's
    /// <c>backchannel_logout_uri</c>). A valid token ends every session signed in through the provider session it names
    /// (<c>sid</c>), or, without a <c>sid</c>, every session of its subject (<c>sub</c>) at that provider, wherever the
    /// session is used next; the answer is 200, or 400 with <c>{"error":"invalid_request",...}</c> for a token that is not
    /// valid (signature with the scheme's keys, issuer, audience = the scheme's client ID, <c>iat</c> within
    /// <see cref="BackChannelLogoutOptions.IssuedAtWindow"/>, <c>exp</c>, the logout event, <c>sid</c> or <c>sub</c>, no
    /// <c>nonce</c>, a <c>jti</c> not seen before); never cached. The endpoint allows anonymous requests (the provider
    /// signs its request with the token, not a cookie).
    /// </summary>
    /// <param name="endpoints">The endpoint route builder (the app).</param>
    /// <param name="pattern">The route pattern; default <see cref="DefaultPattern"/>.</param>
    /// <param name="scheme">
    /// The OpenID Connect authentication scheme whose provider sends the tokens, or <see langword="null"/> for the default
    /// challenge scheme when it is an OpenID Connect scheme, else <see cref="OpenIdConnectDefaults.AuthenticationScheme"/>,
    /// else the only OpenID Connect scheme registered.
    /// </param>
    /// <returns>The endpoint's convention builder.</returns>
    /// <exception cref="InvalidOperationException">
    /// The session services (<c>AddServerSideSessions</c>) are not registered, or there is no such OpenID Connect scheme.
    /// </exception>
    /// <exception cref="OptionsValidationException">A <see cref="BackChannelLogoutOptions"/> setting is out of range.</exception>
    public static IEndpointConventionBuilder MapBackChannelLogout(this IEndpointRouteBuilder endpoints, string pattern = DefaultPattern, string? scheme = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentException.ThrowIfNullOrEmpty(pattern);
        var services = endpoints.ServiceProvider;
        var sessions = services.GetService<ISessionManager>() ?? throw new InvalidOperationException(
            "MapBackChannelLogout() needs the session services: call builder.Services.AddServerSideSessions(...).AddTicketStore() when registering services.");
        var schemeName = OpenIdConnectSchemes.Resolve(services.GetRequiredService<IOptions<AuthenticationOptions>>().Value, scheme);
        var options = services.GetRequiredService<IOptions<BackChannelLogoutOptions>>().Value;
        var validation = new BackChannelLogoutOptionsValidator().Validate(Options.DefaultName, options);
        if (validation.Failed)
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(BackChannelLogoutOptions), validation.Failures);
        }

        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger(BackChannelLogoutLog.CategoryName);
        var endpoint = new BackChannelLogoutEndpoint(
            schemeName,
            services.GetRequiredService<IOptionsMonitor<OpenIdConnectOptions>>(),
            options,
            sessions,
            services.GetService<TimeProvider>() ?? TimeProvider.System,
            new BackChannelLogoutMetrics(services.GetService<IMeterFactory>()),
            logger);
        BackChannelLogoutLog.Mapped(logger, schemeName, pattern);
        return endpoints.Map(pattern, endpoint.HandleAsync)
            .WithDisplayName("OpenID Connect back-channel logout (" + schemeName + ")")
            .AllowAnonymous()
            .DisableAntiforgery();
    }
}
