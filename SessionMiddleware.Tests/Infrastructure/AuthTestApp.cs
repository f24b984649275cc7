using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace SessionMiddleware.Tests.Infrastructure;

/// <summary>
/// An app that signs in with ASP.NET Core cookie authentication through the ticket store, on real Kestrel:
/// <c>/signin?user=&amp;remember=</c> (409 when MaxSessionsPerUser refuses it), <c>/bind-now?user=</c>, <c>/wait-ended</c>, <c>/signin-external?user=</c> and <c>/signout-external</c> (Identity's external
/// scheme, a helper), <c>/whoami</c> (the user or "anonymous"), <c>/admin-only</c> (authorized: 401 otherwise),
/// <c>/me</c> (the user and the session ID), <c>/redirect</c>, <c>/no-content</c> and <c>/ok-empty</c> (responses without a
/// body), <c>/signout</c>, <c>/revoke?user=</c>, and the session endpoints of <see cref="SessionTestHost"/>.
/// </summary>
internal static class AuthTestApp
{
    /// <summary>Claims besides the user ID that no database file may show in plain text.</summary>
    public const string SecretEmail = "erin.secret-claim@example.org";

    public const string SecretRole = "role-ADMIN-7f3a";

    public static Task<SessionTestHost> StartAsync(
        string folder,
        FakeTimeProvider? time = null,
        Action<CookieAuthenticationOptions>? cookie = null,
        Action<IServerSideSessionsBuilder>? services = null,
        bool authenticationBeforeSessions = false,
        Action<ServerSideSessionOptions>? configure = null,
        string? keysFolder = null,
        bool sessionMiddleware = true,
        StoreKind store = StoreKind.Sqlite) =>
        SessionTestHost.StartAsync(
            folder,
            configure,
            services: s =>
            {
                s.AddTicketStore();
                s.Services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme)
                    .AddCookie(o =>
                    {
                        o.Events.OnRedirectToLogin = c =>
                        {
                            c.Response.StatusCode = StatusCodes.Status401Unauthorized;
                            return Task.CompletedTask;
                        };
                        cookie?.Invoke(o);
                    })
                    .AddCookie(IdentityConstants.ExternalScheme);
                s.Services.AddAuthorization();
                services?.Invoke(s);
            },
            endpoints: app =>
            {
                app.UseAuthentication();
                app.UseAuthorization();
                Map(app);
            },
            time: time ?? new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds())),
            keysFolder: keysFolder,
            authenticationFirst: authenticationBeforeSessions,
            sessionMiddleware: sessionMiddleware,
            store: store);

    private static void Map(WebApplication app)
    {
        app.MapGet("/signin", async (HttpContext c, string user, bool? remember) =>
        {
            var identity = new ClaimsIdentity(
                [
                    new Claim(ClaimTypes.NameIdentifier, user),
                    new Claim(ClaimTypes.Name, user),
                    new Claim(ClaimTypes.Email, SecretEmail),
                    new Claim(ClaimTypes.Role, SecretRole),
                ],
                CookieAuthenticationDefaults.AuthenticationScheme);
            try
            {
                await c.SignInAsync(new ClaimsPrincipal(identity), new AuthenticationProperties { IsPersistent = remember ?? false });
            }
            catch (SessionLimitExceededException refused)
            {
                // MaxSessionsPerUser with RefuseSignIn: what an app answers.
                return Results.Text($"refused: {refused.UserId} has {refused.MaxSessions}", statusCode: StatusCodes.Status409Conflict);
            }

            return Results.Text("signed in");
        });

        // Bound through IServerSideSession.BindToUser, committed at once so that a refusal can be answered here.
        app.MapGet("/bind-now", async (HttpContext c, string user) =>
        {
            ((IServerSideSession)c.Session).BindToUser(user);
            try
            {
                await c.Session.CommitAsync();
            }
            catch (SessionLimitExceededException)
            {
                return Results.Text("refused", statusCode: StatusCodes.Status409Conflict);
            }

            return Results.Text("bound");
        });

        // Completes when the session ends (IServerSideSession.Ended), as a stream held open for the session would.
        app.MapGet("/wait-ended", async (HttpContext c) =>
        {
            var ended = ((IServerSideSession)c.Session).Ended;
            await c.Response.WriteAsync("waiting\n");
            await c.Response.Body.FlushAsync();
            using var either = CancellationTokenSource.CreateLinkedTokenSource(ended, c.RequestAborted);
            try
            {
                await Task.Delay(Timeout.Infinite, either.Token);
            }
            catch (OperationCanceledException) when (ended.IsCancellationRequested)
            {
                await c.Response.WriteAsync("ended");
            }
        });
        app.MapGet("/signin-external", async (HttpContext c, string user) =>
        {
            var identity = new ClaimsIdentity([new Claim(ClaimTypes.NameIdentifier, "external-" + user)], IdentityConstants.ExternalScheme);
            await c.SignInAsync(IdentityConstants.ExternalScheme, new ClaimsPrincipal(identity));
            return "external";
        });
        app.MapGet("/external", async (HttpContext c) =>
            (await c.AuthenticateAsync(IdentityConstants.ExternalScheme)).Principal?.FindFirst(ClaimTypes.NameIdentifier)?.Value ?? "none");
        app.MapGet("/signout-external", async (HttpContext c) =>
        {
            await c.SignOutAsync(IdentityConstants.ExternalScheme);
            return "ok";
        });
        app.MapGet("/added-claims", (HttpContext c) => c.User.FindAll("added").Count().ToString(System.Globalization.CultureInfo.InvariantCulture));
        app.MapGet("/whoami", (HttpContext c) => c.User.Identity?.IsAuthenticated == true ? c.User.Identity.Name! : "anonymous");
        app.MapGet("/me", (HttpContext c) => (c.User.Identity?.IsAuthenticated == true ? c.User.Identity.Name! : "anonymous") + " " + c.Session.Id);

        // Responses without a body: the cookie handler's sliding renewal runs as they start, after the pipeline returned.
        app.MapGet("/redirect", () => Results.Redirect("/whoami"));
        app.MapGet("/no-content", () => Results.NoContent());
        app.MapGet("/ok-empty", () => Results.Ok());
        app.MapGet("/admin-only", (HttpContext c) => "admin page for " + c.User.Identity!.Name).RequireAuthorization();
        app.MapGet("/signout", async (HttpContext c) =>
        {
            await c.SignOutAsync();
            return "signed out";
        });
        app.MapGet("/revoke", async (ISessionManager sessions, string user) => (await sessions.RevokeAllForUserAsync(user)).ToString(System.Globalization.CultureInfo.InvariantCulture));
    }
}
