using System.Net;
using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests.SignIn;

/// <summary>
/// <c>RequireRecentSignIn</c> where the app binds the session itself (<c>BindToUser</c>) and authenticates with a scheme
/// other than cookies (a header here): the binding is the sign-in it checks, and the session must be the principal's.
/// </summary>
public sealed class RecentSignInBindToUserTests : TempFolderTest
{
    [Test]
    public async Task BindToUser_IsTheSignIn_AndAnOlderOneIsChallenged_NotForbidden()
    {
        await using var host = await StartAsync();
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/bind?user=erin");

        using var fresh = await SendAsync(browser, "erin");
        host.Time.Advance(TimeSpan.FromMinutes(10));
        using var old = await SendAsync(browser, "erin");

        Assert.Multiple(() =>
        {
            Assert.That(fresh.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(old.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized), "the header scheme's challenge (its forbid is 403)");
        });
    }

    [Test]
    public async Task ASessionBoundToAnotherUser_DoesNotVouchForThePrincipal()
    {
        await using var host = await StartAsync();
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/bind?user=erin");

        using var response = await SendAsync(browser, "finn");

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient browser, string user)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/security");
        request.Headers.Add(HeaderHandler.Header, user);
        return await browser.SendAsync(request);
    }

    private Task<SessionTestHost> StartAsync() =>
        SessionTestHost.StartAsync(
            Folder.Path,
            services: s =>
            {
                s.AddTicketStore();
                s.Services.AddAuthentication(HeaderHandler.SchemeName).AddScheme<AuthenticationSchemeOptions, HeaderHandler>(HeaderHandler.SchemeName, null);
                s.Services.AddAuthorizationBuilder().AddPolicy("recent", p => p.RequireRecentSignIn(TimeSpan.FromMinutes(5)));
            },
            endpoints: app =>
            {
                app.UseAuthentication();
                app.UseAuthorization();
                app.MapGet("/security", () => "security settings").RequireAuthorization("recent");
            },
            time: new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds())));

    /// <summary>Authenticates whoever the X-User header names (a stand-in for a bearer token).</summary>
    private sealed class HeaderHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder)
        : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
    {
        public const string SchemeName = "header";

        public const string Header = "X-User";

        protected override Task<AuthenticateResult> HandleAuthenticateAsync()
        {
            if (Request.Headers[Header].ToString() is not { Length: > 0 } user)
            {
                return Task.FromResult(AuthenticateResult.NoResult());
            }

            var principal = new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.NameIdentifier, user), new Claim(ClaimTypes.Name, user)], SchemeName));
            return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName)));
        }
    }
}
