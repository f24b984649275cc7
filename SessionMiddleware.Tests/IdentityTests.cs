using System.Net;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using SessionMiddleware.Tests.Infrastructure;

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
                s.Services.AddSingleton<IUserStore<TestUser>, InMemoryUserStore>();
                s.Services.AddIdentityCore<TestUser>(o =>
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

                app.MapGet("/identity/register", async (UserManager<TestUser> users, string user, string password, bool? twoFactor) =>
                    (await users.CreateAsync(new TestUser { Id = "id-" + user, UserName = user, TwoFactorEnabled = twoFactor ?? false }, password)).Succeeded ? "ok" : "failed");
                app.MapGet("/identity/signin-2fa", async (SignInManager<TestUser> signIn, string code, bool rememberClient) =>
                    (await signIn.TwoFactorSignInAsync(TestTokenProvider.Name, code, isPersistent: false, rememberClient)).ToString());
                app.MapGet("/identity/signout", async (SignInManager<TestUser> signIn) =>
                {
                    await signIn.SignOutAsync();
                    return "ok";
                });
                app.MapGet("/identity/signin", async (SignInManager<TestUser> signIn, string user, string password) =>
                    (await signIn.PasswordSignInAsync(user, password, isPersistent: false, lockoutOnFailure: false)).ToString());
                app.MapGet("/identity/stamp", async (UserManager<TestUser> users, string user) =>
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
        app.MapPost("/Account/Register", async (UserManager<TestUser> users, SignInManager<TestUser> signIn, string user, string password) =>
        {
            var created = new TestUser { Id = "id-" + user, UserName = user };
            if (!(await users.CreateAsync(created, password)).Succeeded)
            {
                return Results.BadRequest();
            }

            await signIn.SignInAsync(created, isPersistent: false);
            return Results.LocalRedirect("/");
        });
        app.MapPost("/Account/Login", async (SignInManager<TestUser> signIn, string user, string password) =>
            (await signIn.PasswordSignInAsync(user, password, isPersistent: false, lockoutOnFailure: false)).Succeeded
                ? Results.LocalRedirect("/")
                : Results.BadRequest());
        app.MapPost("/Account/Logout", async (SignInManager<TestUser> signIn) =>
        {
            await signIn.SignOutAsync();
            return Results.LocalRedirect("/");
        });
    }

    public sealed class TestUser
    {
        public string Id { get; set; } = "";

        public string? UserName { get; set; }

        public string? NormalizedUserName { get; set; }

        public string? PasswordHash { get; set; }

        public string? SecurityStamp { get; set; }

        public bool TwoFactorEnabled { get; set; }
    }

    /// <summary>A second factor with a fixed code: the test is about the cookies, not the codes.</summary>
    private sealed class TestTokenProvider : IUserTwoFactorTokenProvider<TestUser>
    {
        public const string Name = "Test";

        public const string Code = "424242";

        public Task<string> GenerateAsync(string purpose, UserManager<TestUser> manager, TestUser user) => Task.FromResult(Code);

        public Task<bool> ValidateAsync(string purpose, string token, UserManager<TestUser> manager, TestUser user) => Task.FromResult(token == Code);

        public Task<bool> CanGenerateTwoFactorTokenAsync(UserManager<TestUser> manager, TestUser user) => Task.FromResult(true);
    }

    /// <summary>Users in a dictionary: what Identity needs for password sign-in and security stamps, nothing more.</summary>
    private sealed class InMemoryUserStore : IUserPasswordStore<TestUser>, IUserSecurityStampStore<TestUser>, IUserTwoFactorStore<TestUser>
    {
        public Task SetTwoFactorEnabledAsync(TestUser user, bool enabled, CancellationToken cancellationToken)
        {
            user.TwoFactorEnabled = enabled;
            return Task.CompletedTask;
        }

        public Task<bool> GetTwoFactorEnabledAsync(TestUser user, CancellationToken cancellationToken) => Task.FromResult(user.TwoFactorEnabled);

        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, TestUser> _users = new(StringComparer.Ordinal);

        public Task<IdentityResult> CreateAsync(TestUser user, CancellationToken cancellationToken)
        {
            _users[user.Id] = user;
            return Task.FromResult(IdentityResult.Success);
        }

        public Task<IdentityResult> UpdateAsync(TestUser user, CancellationToken cancellationToken)
        {
            _users[user.Id] = user;
            return Task.FromResult(IdentityResult.Success);
        }

        public Task<IdentityResult> DeleteAsync(TestUser user, CancellationToken cancellationToken) =>
            Task.FromResult(_users.TryRemove(user.Id, out _) ? IdentityResult.Success : IdentityResult.Failed());

        public Task<TestUser?> FindByIdAsync(string userId, CancellationToken cancellationToken) => Task.FromResult(_users.GetValueOrDefault(userId));

        public Task<TestUser?> FindByNameAsync(string normalizedUserName, CancellationToken cancellationToken) =>
            Task.FromResult(_users.Values.FirstOrDefault(u => u.NormalizedUserName == normalizedUserName));

        public Task<string?> GetNormalizedUserNameAsync(TestUser user, CancellationToken cancellationToken) => Task.FromResult(user.NormalizedUserName);

        public Task<string> GetUserIdAsync(TestUser user, CancellationToken cancellationToken) => Task.FromResult(user.Id);

        public Task<string?> GetUserNameAsync(TestUser user, CancellationToken cancellationToken) => Task.FromResult(user.UserName);

        public Task SetNormalizedUserNameAsync(TestUser user, string? normalizedName, CancellationToken cancellationToken)
        {
            user.NormalizedUserName = normalizedName;
            return Task.CompletedTask;
        }

        public Task SetUserNameAsync(TestUser user, string? userName, CancellationToken cancellationToken)
        {
            user.UserName = userName;
            return Task.CompletedTask;
        }

        public Task SetPasswordHashAsync(TestUser user, string? passwordHash, CancellationToken cancellationToken)
        {
            user.PasswordHash = passwordHash;
            return Task.CompletedTask;
        }

        public Task<string?> GetPasswordHashAsync(TestUser user, CancellationToken cancellationToken) => Task.FromResult(user.PasswordHash);

        public Task<bool> HasPasswordAsync(TestUser user, CancellationToken cancellationToken) => Task.FromResult(user.PasswordHash is not null);

        public Task SetSecurityStampAsync(TestUser user, string stamp, CancellationToken cancellationToken)
        {
            user.SecurityStamp = stamp;
            return Task.CompletedTask;
        }

        public Task<string?> GetSecurityStampAsync(TestUser user, CancellationToken cancellationToken) => Task.FromResult(user.SecurityStamp);

        public void Dispose()
        {
        }
    }
}
