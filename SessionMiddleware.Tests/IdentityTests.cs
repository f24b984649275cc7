using System.Net;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using SessionMiddleware.Tests.Infrastructure;
using SessionMiddleware.Tests.SignIn;

namespace SessionMiddleware.Tests;

/// <summary>
/// ASP.NET Core Identity (AddIdentityCore + its cookies, an in-memory user store written for the test) signing in on
/// the server-side session through <c>AddTicketStore()</c>, on real Kestrel and a real SQLite file.
/// </summary>
public sealed class IdentityTests : TempFolderTest
{
    /// <summary>
    /// <c>dotnet new webapp --auth Individual</c> wired as the README says: the template never calls <c>UseAuthentication()</c>,
    /// so WebApplication inserts it at the start of the pipeline, before <c>UseServerSideSessions()</c>. Its pages answer
    /// form posts with redirects.
    /// </summary>
    [Test]
    public async Task TheIdentityTemplatesPipeline_WithoutAUseAuthenticationLine_RegistersSignsInAndOut()
    {
        await using var host = await StartAsync(templateShape: true);
        var browser = host.CreateBrowser();

        using var register = await browser.PostAsync("/Account/Register?user=erin&password=secret-pass", null);
        var afterRegister = await browser.GetTextAsync("/whoami");
        using var signOut = await browser.PostAsync("/Account/Logout", null);
        var afterSignOut = await browser.GetTextAsync("/whoami");
        using var signIn = await browser.PostAsync("/Account/Login?user=erin&password=secret-pass", null);
        var afterSignIn = await browser.GetTextAsync("/whoami");
        using var page = await browser.GetAsync("/admin-only");
        var sessions = await host.Services.GetRequiredService<ISessionManager>().ListForUserAsync("id-erin");

        Assert.Multiple(async () =>
        {
            Assert.That(register.StatusCode, Is.EqualTo(HttpStatusCode.Redirect), "register signs in and redirects");
            Assert.That(afterRegister, Is.EqualTo("erin"));
            Assert.That(signOut.StatusCode, Is.EqualTo(HttpStatusCode.Redirect));
            Assert.That(afterSignOut, Is.EqualTo("anonymous"));
            Assert.That(signIn.StatusCode, Is.EqualTo(HttpStatusCode.Redirect));
            Assert.That(afterSignIn, Is.EqualTo("erin"));
            Assert.That(page.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(sessions, Has.Count.EqualTo(1));
            Assert.That(await browser.GetTextAsync("/id"), Is.EqualTo(sessions[0].Id), "the sign-in is in the session the app sees");
        });
    }

    [Test]
    public async Task PasswordSignIn_ThenRevokeAllForUser_SignsTheUserOut()
    {
        await using var host = await StartAsync();
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/identity/register?user=erin&password=secret-pass");

        var signIn = await browser.GetTextAsync("/identity/signin?user=erin&password=secret-pass");
        var before = await browser.GetTextAsync("/whoami");
        var ended = await host.Services.GetRequiredService<ISessionManager>().RevokeAllForUserAsync("id-erin");
        using var after = await browser.GetAsync("/admin-only");

        Assert.Multiple(async () =>
        {
            Assert.That(signIn, Is.EqualTo("Succeeded"));
            Assert.That(before, Is.EqualTo("erin"));
            Assert.That(ended, Is.EqualTo(1), "the session is bound to the user's ID (Identity's NameIdentifier claim)");
            Assert.That(after.StatusCode, Is.EqualTo(HttpStatusCode.Redirect), "Identity's sign-in redirect");
            Assert.That(after.Headers.Location?.ToString(), Does.Contain("/Account/Login"));
            Assert.That(await browser.GetTextAsync("/whoami"), Is.EqualTo("anonymous"));
        });
    }

    [Test]
    public async Task UpdateSecurityStamp_StillSignsTheUserOut_ThroughTheSecurityStampValidator()
    {
        await using var host = await StartAsync();
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/identity/register?user=erin&password=secret-pass");
        await browser.GetTextAsync("/identity/signin?user=erin&password=secret-pass");
        var before = await browser.GetTextAsync("/whoami");

        await browser.GetTextAsync("/identity/stamp?user=erin");
        host.Time.Advance(TimeSpan.FromSeconds(1));   // past the validator's interval (zero here): it checks the stamp
        var after = await browser.GetTextAsync("/whoami");

        Assert.Multiple(() =>
        {
            Assert.That(before, Is.EqualTo("erin"));
            Assert.That(after, Is.EqualTo("anonymous"));
            Assert.That(host.CountRows(), Is.Zero, "the validator's sign-out ended the session row");
        });
    }

    [Test]
    public async Task TwoFactorSignIn_WithRememberThisDevice_StillSkipsTheSecondFactor_AfterSignOutAndSignIn()
    {
        await using var host = await StartAsync();
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/identity/register?user=erin&password=secret-pass&twoFactor=true");

        var first = await browser.GetTextAsync("/identity/signin?user=erin&password=secret-pass");
        var afterFirstStep = await browser.GetTextAsync("/whoami");
        var second = await browser.GetTextAsync($"/identity/signin-2fa?code={TestTokenProvider.Code}&rememberClient=true");
        var signedIn = await browser.GetTextAsync("/whoami");
        await browser.GetTextAsync("/identity/signout");
        var signedOut = await browser.GetTextAsync("/whoami");
        var again = await browser.GetTextAsync("/identity/signin?user=erin&password=secret-pass");

        Assert.Multiple(async () =>
        {
            Assert.That(first, Is.EqualTo("RequiresTwoFactor"));
            Assert.That(afterFirstStep, Is.EqualTo("anonymous"), "the two-factor step is a helper sign-in, not the app's");
            Assert.That(second, Is.EqualTo("Succeeded"));
            Assert.That(signedIn, Is.EqualTo("erin"));
            Assert.That(signedOut, Is.EqualTo("anonymous"));
            Assert.That(again, Is.EqualTo("Succeeded"), "this device is remembered: no second factor");
            Assert.That(await browser.GetTextAsync("/whoami"), Is.EqualTo("erin"));
        });
    }

    [Test]
    public async Task EveryIdentityCookieButRememberThisDevice_KeepsItsTicketInTheSession()
    {
        await using var host = await StartAsync();
        var cookies = host.Services.GetRequiredService<IOptionsMonitor<CookieAuthenticationOptions>>();

        Assert.Multiple(() =>
        {
            Assert.That(cookies.Get(IdentityConstants.ApplicationScheme).SessionStore, Is.Not.Null);
            Assert.That(cookies.Get(IdentityConstants.ExternalScheme).SessionStore, Is.Not.Null);
            Assert.That(cookies.Get(IdentityConstants.TwoFactorUserIdScheme).SessionStore, Is.Not.Null);
            Assert.That(
                cookies.Get(IdentityConstants.TwoFactorRememberMeScheme).SessionStore,
                Is.Null,
                "\"remember this device\" must outlive sign-out, so it stays a self-contained cookie");
        });
    }

    /// <summary>The test's Identity app; <paramref name="templateShape"/>: the template's pipeline, without a UseAuthentication() line.</summary>
    private Task<SessionTestHost> StartAsync(bool templateShape = false) =>
        SessionTestHost.StartAsync(
            Folder.Path,
            services: s =>
            {
                s.AddTicketStore();
                s.Services.AddSingleton<IUserStore<SignInTestUser>, IdentityUserStore>();
                s.Services.AddIdentityCore<SignInTestUser>(o =>
                    {
                        o.Password.RequireDigit = false;
                        o.Password.RequireUppercase = false;
                        o.Password.RequireNonAlphanumeric = false;
                    })
                    .AddSignInManager()
                    .AddTokenProvider<TestTokenProvider>(TestTokenProvider.Name);
                s.Services.AddAuthentication(IdentityConstants.ApplicationScheme).AddIdentityCookies();
                s.Services.Configure<SecurityStampValidatorOptions>(o => o.ValidationInterval = TimeSpan.Zero);
                s.Services.AddAuthorization();
            },
            endpoints: app =>
            {
                if (templateShape)
                {
                    // The template's lines: UseRouting and UseAuthorization, no UseAuthentication.
                    app.UseRouting();
                    app.UseAuthorization();
                    MapTemplatePages(app);
                }
                else
                {
                    app.UseAuthentication();
                    app.UseAuthorization();
                }

                app.MapGet("/identity/register", async (UserManager<SignInTestUser> users, string user, string password, bool? twoFactor) =>
                    (await users.CreateAsync(new SignInTestUser { Id = "id-" + user, UserName = user, TwoFactorEnabled = twoFactor ?? false }, password)).Succeeded ? "ok" : "failed");
                app.MapGet("/identity/signin-2fa", async (SignInManager<SignInTestUser> signIn, string code, bool rememberClient) =>
                    (await signIn.TwoFactorSignInAsync(TestTokenProvider.Name, code, isPersistent: false, rememberClient)).ToString());
                app.MapGet("/identity/signout", async (SignInManager<SignInTestUser> signIn) =>
                {
                    await signIn.SignOutAsync();
                    return "ok";
                });
                app.MapGet("/identity/signin", async (SignInManager<SignInTestUser> signIn, string user, string password) =>
                    (await signIn.PasswordSignInAsync(user, password, isPersistent: false, lockoutOnFailure: false)).ToString());
                app.MapGet("/identity/stamp", async (UserManager<SignInTestUser> users, string user) =>
                {
                    await users.UpdateSecurityStampAsync((await users.FindByNameAsync(user))!);
                    return "ok";
                });
                app.MapGet("/whoami", (HttpContext c) => c.User.Identity?.IsAuthenticated == true ? c.User.Identity.Name! : "anonymous");
                app.MapGet("/admin-only", (HttpContext c) => "admin").RequireAuthorization();
            },
            time: new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds())));

    /// <summary>What the template's Register, Login and Logout pages do on a post, with their redirects.</summary>
    private static void MapTemplatePages(WebApplication app)
    {
        app.MapPost("/Account/Register", async (UserManager<SignInTestUser> users, SignInManager<SignInTestUser> signIn, string user, string password) =>
        {
            var created = new SignInTestUser { Id = "id-" + user, UserName = user };
            if (!(await users.CreateAsync(created, password)).Succeeded)
            {
                return Results.BadRequest();
            }

            await signIn.SignInAsync(created, isPersistent: false);
            return Results.LocalRedirect("/");
        });
        app.MapPost("/Account/Login", async (SignInManager<SignInTestUser> signIn, string user, string password) =>
            (await signIn.PasswordSignInAsync(user, password, isPersistent: false, lockoutOnFailure: false)).Succeeded
                ? Results.LocalRedirect("/")
                : Results.BadRequest());
        app.MapPost("/Account/Logout", async (SignInManager<SignInTestUser> signIn) =>
        {
            await signIn.SignOutAsync();
            return Results.LocalRedirect("/");
        });
    }

    /// <summary>A second factor with a fixed code: the test is about the cookies, not the codes.</summary>
    private sealed class TestTokenProvider : IUserTwoFactorTokenProvider<SignInTestUser>
    {
        public const string Name = "Test";

        public const string Code = "424242";

        public Task<string> GenerateAsync(string purpose, UserManager<SignInTestUser> manager, SignInTestUser user) => Task.FromResult(Code);

        public Task<bool> ValidateAsync(string purpose, string token, UserManager<SignInTestUser> manager, SignInTestUser user) => Task.FromResult(token == Code);

        public Task<bool> CanGenerateTwoFactorTokenAsync(UserManager<SignInTestUser> manager, SignInTestUser user) => Task.FromResult(true);
    }
}
