using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests.SignIn;

/// <summary>
/// ASP.NET Core Identity (AddIdentityCore, its cookies, <see cref="IdentityUserStore"/>) on the ticket store, on real Kestrel
/// and a real SQLite file. Endpoints: <c>/identity/register</c>, <c>/identity/signin</c> (PasswordSignInAsync),
/// <c>/identity/change-password</c> (ChangePasswordAsync + RefreshSignInAsync, as the template's page),
/// <c>/identity/profile</c> (an update that keeps the stamp), <c>/identity/two-factor</c> (SetTwoFactorEnabledAsync +
/// RefreshSignInAsync), <c>/identity/refresh</c>, <c>/whoami</c>, <c>/signed-in-at</c> (Unix seconds or "none"),
/// <c>/security</c> and <c>/security-attribute</c> (policy "recent": a sign-in within 5 minutes) and
/// <c>/security-admin</c> (policy "recent-admin": also an "admin" claim the users never have).
/// </summary>
internal sealed class IdentitySignInApp
{
    public const string RecentPolicy = "recent";

    public const string RecentAdminPolicy = "recent-admin";

    public const string RecentBlockedPolicy = "recent-blocked";

    public static readonly TimeSpan RecentSignIn = TimeSpan.FromMinutes(5);

    /// <summary>The reasons of the sessions that ended, in order (OnEnded).</summary>
    public ConcurrentQueue<string> EndReasons { get; } = new();

    public IdentityUserStore Users { get; } = new();

    /// <summary>Starts the app; <paramref name="cookie"/> configures Identity's application cookie; <paramref name="identityFirst"/> registers Identity before AddTicketStore(); <paramref name="more"/> registers more after, <paramref name="before"/> before anything; <paramref name="identity"/> sets Identity's options; <paramref name="endpoints"/> maps more.</summary>
    public Task<SessionTestHost> StartAsync(string folder, Action<CookieAuthenticationOptions>? cookie = null, bool identityFirst = false, Action<IServerSideSessionsBuilder>? more = null,
        Action<IServiceCollection>? before = null, Action<IdentityOptions>? identity = null, Action<WebApplication>? endpoints = null) =>
        SessionTestHost.StartAsync(
            folder,
            configure: o => o.Events.OnEnded = c =>
            {
                EndReasons.Enqueue(c.Reason);
                return Task.CompletedTask;
            },
            services: s =>
            {
                before?.Invoke(s.Services);
                if (!identityFirst)
                {
                    s.AddTicketStore();
                }

                AddIdentity(s.Services, cookie, identity);
                if (identityFirst)
                {
                    s.AddTicketStore();
                }

                more?.Invoke(s);
            },
            endpoints: app =>
            {
                app.UseAuthentication();
                app.UseAuthorization();
                Map(app);
                endpoints?.Invoke(app);
            },
            time: new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds())));

    private void AddIdentity(IServiceCollection services, Action<CookieAuthenticationOptions>? cookie, Action<IdentityOptions>? identity)
    {
        services.AddSingleton<IUserStore<SignInTestUser>>(Users);
        services.AddIdentityCore<SignInTestUser>(o =>
            {
                o.Password.RequireDigit = false;
                o.Password.RequireUppercase = false;
                o.Password.RequireNonAlphanumeric = false;
                identity?.Invoke(o);
            })
            .AddSignInManager();
        services.AddAuthentication(IdentityConstants.ApplicationScheme).AddIdentityCookies(c => c.ApplicationCookie?.Configure(o => cookie?.Invoke(o)));
        services.AddAuthorizationBuilder()
            .AddPolicy(RecentPolicy, p => p.RequireRecentSignIn(RecentSignIn))
            .AddPolicy(RecentAdminPolicy, p => p.RequireRecentSignIn(RecentSignIn).RequireClaim("admin"))
            .AddPolicy(RecentBlockedPolicy, p => p.RequireRecentSignIn(RecentSignIn).AddRequirements(new FailingRequirement()));
    }

    private static void Map(WebApplication app)
    {
        app.MapGet("/identity/register", async (UserManager<SignInTestUser> users, string user, string password) =>
            (await users.CreateAsync(new SignInTestUser { Id = "id-" + user, UserName = user }, password)).Succeeded ? "ok" : "failed");
        app.MapGet("/identity/signin", async (SignInManager<SignInTestUser> signIn, string user, string password) =>
            (await signIn.PasswordSignInAsync(user, password, isPersistent: false, lockoutOnFailure: false)).ToString());
        app.MapGet("/identity/change-password", async (HttpContext c, UserManager<SignInTestUser> users, SignInManager<SignInTestUser> signIn, string current, string next) =>
        {
            var user = (await users.GetUserAsync(c.User))!;
            var result = await users.ChangePasswordAsync(user, current, next);
            if (!result.Succeeded)
            {
                return "failed";
            }

            await signIn.RefreshSignInAsync(user);
            return "changed";
        });
        app.MapGet("/identity/signin-then-stamp", async (UserManager<SignInTestUser> users, SignInManager<SignInTestUser> signIn, string user, string password) =>
        {
            // A sign-in (which renews the session ID, committed with the response) and a change of stamp in one request.
            var result = await signIn.PasswordSignInAsync(user, password, isPersistent: false, lockoutOnFailure: false);
            await users.UpdateSecurityStampAsync((await users.FindByNameAsync(user))!);
            return result.ToString();
        });
        app.MapGet("/identity/two-factor", async (HttpContext c, UserManager<SignInTestUser> users, SignInManager<SignInTestUser> signIn, bool enabled) =>
        {
            var user = (await users.GetUserAsync(c.User))!;
            await users.SetTwoFactorEnabledAsync(user, enabled);
            await signIn.RefreshSignInAsync(user);
            return "ok";
        });
        app.MapGet("/identity/profile", async (HttpContext c, UserManager<SignInTestUser> users, string name) =>
        {
            var user = (await users.GetUserAsync(c.User))!;
            user.DisplayName = name;
            return (await users.UpdateAsync(user)).Succeeded ? "saved" : "failed";
        });
        app.MapGet("/identity/refresh", async (HttpContext c, UserManager<SignInTestUser> users, SignInManager<SignInTestUser> signIn) =>
        {
            await signIn.RefreshSignInAsync((await users.GetUserAsync(c.User))!);
            return "refreshed";
        });
        app.MapGet("/whoami", (HttpContext c) => c.User.Identity?.IsAuthenticated == true ? c.User.Identity.Name! : "anonymous");
        app.MapGet("/signed-in-at", (HttpContext c) =>
            c.GetServerSideSession().SignedInAt?.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture) ?? "none");
        app.MapGet("/security", () => "security settings").RequireAuthorization(RecentPolicy);
        app.MapGet("/security-attribute", [Authorize(Policy = RecentPolicy)] () => "security settings");
        app.MapGet("/security-blocked", () => "blocked").RequireAuthorization(RecentBlockedPolicy);
        app.MapGet("/security-admin", () => "admin security settings").RequireAuthorization(RecentAdminPolicy);
    }

    /// <summary>A requirement whose handler calls <c>Fail()</c>: nothing lets a user through.</summary>
    private sealed class FailingRequirement : AuthorizationHandler<FailingRequirement>, IAuthorizationRequirement
    {
        protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, FailingRequirement requirement)
        {
            context.Fail(new AuthorizationFailureReason(this, "blocked"));
            return Task.CompletedTask;
        }
    }
}
