using System.Collections.Concurrent;
using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests.OpenIdConnect;

/// <summary>
/// An app that signs in through <see cref="TestOpenIdProvider"/> on real Kestrel: cookie authentication with the ticket
/// store, AddOpenIdConnect (authorization code flow, PKCE, form_post), the back-channel logout endpoint at
/// <see cref="BackChannelLogoutEndpointRouteBuilderExtensions.DefaultPattern"/>. <c>/login</c> challenges, <c>/whoami</c>
/// answers the user or "anonymous", <c>/me</c> the user and the session ID, <c>/claims</c> the sid and sub claims with their
/// issuers, <c>/signin-facts</c> what the ticket store records of the principal (issuer|sid|sub). <see cref="Ended"/> collects every OnEnded.
/// </summary>
internal sealed class OpenIdConnectTestApp : IAsyncDisposable
{
    private OpenIdConnectTestApp(SessionTestHost host, ConcurrentQueue<SessionEndedContext> ended)
    {
        Host = host;
        Ended = ended;
    }

    public SessionTestHost Host { get; }

    public ConcurrentQueue<SessionEndedContext> Ended { get; }

    public Uri LogoutEndpoint => new(Host.BaseAddress, BackChannelLogoutEndpointRouteBuilderExtensions.DefaultPattern);

    public static async Task<OpenIdConnectTestApp> StartAsync(
        string folder,
        TestOpenIdProvider provider,
        FakeTimeProvider time,
        StoreKind store = StoreKind.Sqlite,
        Action<IServerSideSessionsBuilder>? services = null,
        string? keysFolder = null)
    {
        var ended = new ConcurrentQueue<SessionEndedContext>();
        var host = await SessionTestHost.StartAsync(
            folder,
            o => o.Events.OnEnded = c =>
            {
                ended.Enqueue(c);
                return Task.CompletedTask;
            },
            services: s =>
            {
                s.AddTicketStore();
                s.Services.AddAuthentication(o =>
                    {
                        o.DefaultScheme = CookieAuthenticationDefaults.AuthenticationScheme;
                        o.DefaultChallengeScheme = OpenIdConnectDefaults.AuthenticationScheme;
                    })
                    .AddCookie()
                    .AddOpenIdConnect(o => Configure(o, provider));
                s.Services.AddAuthorization();
                services?.Invoke(s);
            },
            endpoints: Map,
            time: time,
            keysFolder: keysFolder,
            store: store);
        return new OpenIdConnectTestApp(host, ended);
    }

    private static void Configure(OpenIdConnectOptions o, TestOpenIdProvider provider)
    {
        o.Authority = provider.Issuer;
        o.ClientId = TestOpenIdProvider.ClientId;
        o.ClientSecret = TestOpenIdProvider.ClientSecret;
        o.ResponseType = "code";
        o.UsePkce = true;
        o.RequireHttpsMetadata = false;
        o.Scope.Clear();
        o.Scope.Add("openid");
        o.TokenValidationParameters.NameClaimType = "name";
        o.TokenValidationParameters.ClockSkew = TimeSpan.FromMinutes(1);

        // Plain HTTP on loopback: the correlation and nonce cookies may not be Secure-only here.
        o.CorrelationCookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
        o.NonceCookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
    }

    private static void Map(WebApplication app)
    {
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapGet("/login", () => Results.Challenge(new AuthenticationProperties { RedirectUri = "/whoami" }));
        app.MapGet("/whoami", (HttpContext c) => c.User.Identity?.IsAuthenticated == true ? c.User.Identity.Name! : "anonymous");
        app.MapGet("/me", (HttpContext c) => (c.User.Identity?.IsAuthenticated == true ? c.User.Identity.Name! : "anonymous") + " " + c.Session.Id);
        app.MapGet("/claims", (HttpContext c) => string.Join(
            "\n",
            c.User.Claims.Where(x => x.Type is "sid" or "sub" or ClaimTypes.Sid or ClaimTypes.NameIdentifier).Select(x => $"{x.Type}|{x.Value}|{x.Issuer}")));
        app.MapGet("/signin-facts", (HttpContext c) =>
        {
            var facts = Authentication.SignInFacts.Of(c.User, Authentication.SignInFacts.DefaultSecurityStampClaimType);
            return $"{facts.Issuer}|{facts.Sid}|{facts.Subject}";
        });
        app.MapBackChannelLogout();
    }

    public ValueTask DisposeAsync() => Host.DisposeAsync();
}
