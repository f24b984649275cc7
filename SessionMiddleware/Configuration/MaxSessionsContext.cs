using System.Security.Claims;
using Microsoft.AspNetCore.Http;

namespace SessionMiddleware;

/// <summary>What <see cref="ServerSideSessionOptions.MaxSessionsPerUserSelector"/> decides from: the user signing in and the request.</summary>
/// <param name="HttpContext">The request that signs in.</param>
/// <param name="UserId">The user the session is being bound to.</param>
/// <param name="Principal">
/// The principal signing in when the sign-in goes through the ticket store (<c>SignInAsync</c>); otherwise the request's
/// <see cref="HttpContext.User"/>.
/// </param>
public sealed record MaxSessionsContext(HttpContext HttpContext, string UserId, ClaimsPrincipal Principal);
