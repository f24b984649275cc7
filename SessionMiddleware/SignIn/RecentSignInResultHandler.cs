using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using SessionMiddleware.Diagnostics;

namespace SessionMiddleware.SignIn;

/// <summary>
/// Wraps the app's <see cref="IAuthorizationMiddlewareResultHandler"/>: a request that is forbidden only because its
/// sign-in is not recent enough (<see cref="RecentSignInRequirement"/>) is challenged instead, so that cookie
/// authentication sends the browser to its sign-in page with the return URL. Any other result goes to the inner handler
/// as it is.
/// </summary>
internal sealed class RecentSignInResultHandler(
    IAuthorizationMiddlewareResultHandler inner,
    SessionMetrics metrics,
    ILogger<RecentSignInResultHandler> logger) : IAuthorizationMiddlewareResultHandler
{
    /// <summary>The handler this one wraps (the framework's default, or the app's own).</summary>
    public IAuthorizationMiddlewareResultHandler Inner => inner;

    public Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(authorizeResult);
        if (authorizeResult.Forbidden && OnlyRecentSignInFailed(authorizeResult.AuthorizationFailure) is { } requirement)
        {
            // A new sign-in satisfies the policy; a forbid (access denied) would not say so.
            metrics.RecentSignInChallenged();
            var session = RecentSignInRequirement.SessionOf(context);
            SignInLog.RecentSignInChallenged(
                logger, requirement.MaxAge, session?.UserId is null ? null : session.Id, RecentSignInRequirement.SignInAge(context, context.User));
            return inner.HandleAsync(next, context, policy, PolicyAuthorizationResult.Challenge());
        }

        return inner.HandleAsync(next, context, policy, authorizeResult);
    }

    /// <summary>
    /// The recent sign-in requirement when it is the only reason of the failure; otherwise null. A handler's explicit
    /// <c>Fail()</c> leaves no failed requirement (the failure carries its reasons instead): that forbids.
    /// </summary>
    private static RecentSignInRequirement? OnlyRecentSignInFailed(AuthorizationFailure? failure)
    {
        RecentSignInRequirement? strictest = null;
        foreach (var requirement in failure?.FailedRequirements ?? [])
        {
            if (requirement is not RecentSignInRequirement recent)
            {
                return null;
            }

            strictest = strictest is null || recent.MaxAge < strictest.MaxAge ? recent : strictest;
        }

        return strictest;
    }
}
