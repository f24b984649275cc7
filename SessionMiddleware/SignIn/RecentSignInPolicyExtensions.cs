using SessionMiddleware.SignIn;

namespace Microsoft.AspNetCore.Authorization;

/// <summary>Authorization policies on the sign-in the server-side session records.</summary>
public static class RecentSignInPolicyExtensions
{
    /// <summary>
    /// Requires that the user signed in (proved who they are: a password, a second factor, an external provider) no longer
    /// than <paramref name="maxAge"/> ago, as the request's server-side session records it
    /// (<see cref="SessionMiddleware.IServerSideSession.SignedInAt"/>, on the app's <see cref="TimeProvider"/>); a sliding
    /// renewal of the sign-in, or Identity's <c>RefreshSignInAsync</c>, does not count. For pages that change what protects
    /// the account ("sudo mode"): e-mail, password, two-factor settings, deleting the account.
    /// </summary>
    /// <remarks>
    /// With <c>AddTicketStore()</c>, a user whose sign-in is older (or who has none) is challenged rather than forbidden:
    /// cookie authentication redirects to its <c>LoginPath</c> with the return URL, and the sign-in there lets them back in.
    /// A policy that also fails for another reason still forbids. Use it with endpoints
    /// (<c>RequireAuthorization("name")</c>), Razor Pages and MVC (<c>[Authorize(Policy = "name")]</c>). Under MVC's
    /// global <c>AuthorizeFilter</c> the check holds too, but MVC's filter answers a failure itself: with a forbid.
    /// </remarks>
    /// <param name="builder">The policy builder.</param>
    /// <param name="maxAge">The oldest sign-in that passes; more than zero.</param>
    /// <returns>The builder, for chaining.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxAge"/> is zero or negative.</exception>
    public static AuthorizationPolicyBuilder RequireRecentSignIn(this AuthorizationPolicyBuilder builder, TimeSpan maxAge)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.RequireAuthenticatedUser().AddRequirements(new RecentSignInRequirement(maxAge));
    }
}
