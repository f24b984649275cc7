using System.Security.Claims;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using SessionMiddleware.Middleware;

namespace SessionMiddleware.SignIn;

/// <summary>
/// The requirement of <c>RequireRecentSignIn</c>: the request's session records a sign-in
/// (<see cref="IServerSideSession.SignedInAt"/>) no older than <see cref="MaxAge"/> on the app's <see cref="TimeProvider"/>.
/// It is its own handler (ASP.NET Core's pass-through handler runs it), so a policy needs no registration; a failure is
/// answered with a challenge by <see cref="RecentSignInResultHandler"/>.
/// </summary>
internal sealed class RecentSignInRequirement : AuthorizationHandler<RecentSignInRequirement>, IAuthorizationRequirement
{
    public RecentSignInRequirement(TimeSpan maxAge)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(maxAge, TimeSpan.Zero, nameof(maxAge));
        MaxAge = maxAge;
    }

    /// <summary>The oldest sign-in that passes.</summary>
    public TimeSpan MaxAge { get; }

    /// <summary>How long ago the request's session signed its user in; null when it records no sign-in of the authenticated user.</summary>
    public static TimeSpan? SignInAge(HttpContext httpContext, ClaimsPrincipal user)
    {
        ArgumentNullException.ThrowIfNull(httpContext);
        ArgumentNullException.ThrowIfNull(user);

        var session = SessionOf(httpContext);
        if (user.Identity?.IsAuthenticated != true || session?.SignedInAt is not { } signedInAt)
        {
            return null;
        }

        // The session must vouch for this user: a principal from another scheme naming someone else does not pass.
        var services = httpContext.RequestServices;
        var claimType = services?.GetService<IOptions<ServerSideSessionOptions>>()?.Value.UserIdClaimType ?? ClaimTypes.NameIdentifier;
        if (user.FindFirst(claimType)?.Value is { } userId && !string.Equals(userId, session.UserId, StringComparison.Ordinal))
        {
            return null;
        }

        var now = (services?.GetService<TimeProvider>() ?? TimeProvider.System).GetUtcNow();
        return now - signedInAt;
    }

    /// <summary>
    /// The request's server-side session: the one the middleware runs, or the one the ticket store loaded early (when
    /// authorization runs before the session middleware); null without either.
    /// </summary>
    public static IServerSideSession? SessionOf(HttpContext httpContext) =>
        httpContext.Features.Get<Microsoft.AspNetCore.Http.Features.ISessionFeature>()?.Session as IServerSideSession
            ?? RequestSession.Of(httpContext)?.Session;

    protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, RecentSignInRequirement requirement)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(requirement);

        // Left pending on failure (not Fail()), so the result handler can tell that this requirement alone failed.
        if (HttpContextOf(context) is { } httpContext && SignInAge(httpContext, context.User) is { } age && age <= requirement.MaxAge)
        {
            context.Succeed(requirement);
        }

        return Task.CompletedTask;
    }

    private static HttpContext? HttpContextOf(AuthorizationHandlerContext context) => context.Resource switch
    {
        HttpContext httpContext => httpContext,
        Microsoft.AspNetCore.Mvc.Filters.AuthorizationFilterContext mvc => mvc.HttpContext,
        _ => null,
    };
}
