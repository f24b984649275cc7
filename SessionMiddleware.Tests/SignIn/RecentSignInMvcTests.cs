using System.Net;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Authorization;
using Microsoft.Extensions.DependencyInjection;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests.SignIn;

/// <summary>
/// <c>RequireRecentSignIn</c> in MVC: <c>[Authorize(Policy = ...)]</c> on a controller (the authorization middleware
/// evaluates it: a challenge), and a global <see cref="AuthorizeFilter"/> (MVC's filter evaluates it with its own context
/// as the resource: the check works, but MVC forbids a failure itself).
/// </summary>
public sealed class RecentSignInMvcTests : TempFolderTest
{
    [Test]
    public async Task AnAuthorizeAttributeOnAController_ChallengesAnOldSignIn()
    {
        await using var host = await StartAsync(globalFilter: false);
        var browser = await SignedInBrowserAsync(host);
        using var fresh = await browser.GetAsync("/mvc/security");

        host.Time.Advance(TimeSpan.FromMinutes(10));
        using var old = await browser.GetAsync("/mvc/security");

        Assert.Multiple(() =>
        {
            Assert.That(fresh.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(old.Headers.Location?.AbsolutePath, Is.EqualTo("/Account/Login"));
        });
    }

    [Test]
    public async Task AGlobalAuthorizeFilter_PassesARecentSignIn_AndForbidsAnOldOne()
    {
        await using var host = await StartAsync(globalFilter: true);
        var browser = await SignedInBrowserAsync(host);
        using var fresh = await browser.GetAsync("/mvc/open");

        host.Time.Advance(TimeSpan.FromMinutes(10));
        using var old = await browser.GetAsync("/mvc/open");

        Assert.Multiple(() =>
        {
            Assert.That(fresh.StatusCode, Is.EqualTo(HttpStatusCode.OK), "the requirement finds the request through MVC's filter context");
            Assert.That(old.Headers.Location?.AbsolutePath, Is.EqualTo("/Account/AccessDenied"), "MVC's filter forbids on its own");
        });
    }

    private Task<SessionTestHost> StartAsync(bool globalFilter) =>
        new IdentitySignInApp().StartAsync(
            Folder.Path,
            more: s => s.Services.AddControllers(o =>
                {
                    if (globalFilter)
                    {
                        o.Filters.Add(new AuthorizeFilter(IdentitySignInApp.RecentPolicy));
                    }
                })
                .AddApplicationPart(typeof(RecentSignInMvcTests).Assembly),
            endpoints: app => app.MapControllers());

    private static async Task<HttpClient> SignedInBrowserAsync(SessionTestHost host)
    {
        var browser = host.CreateBrowser();
        Assert.That(await browser.GetTextAsync("/identity/register?user=erin&password=secret-pass"), Is.EqualTo("ok"));
        Assert.That(await browser.GetTextAsync("/identity/signin?user=erin&password=secret-pass"), Is.EqualTo("Succeeded"));
        return browser;
    }
}

/// <summary>The controller of <see cref="RecentSignInMvcTests"/>.</summary>
[Route("mvc")]
public sealed class RecentSignInTestController : ControllerBase
{
    [HttpGet("security")]
    [Authorize(Policy = IdentitySignInApp.RecentPolicy)]
    public string Security() => "security settings";

    [HttpGet("open")]
    public string Open() => "open";
}
