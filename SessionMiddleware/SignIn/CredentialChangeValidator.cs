using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Logging;
using SessionMiddleware.Authentication;
using SessionMiddleware.Ids;
using SessionMiddleware.Middleware;

namespace SessionMiddleware.SignIn;

/// <summary>
/// Ends a user's other sessions when their ASP.NET Core Identity security stamp changes: a password change or reset, a
/// change of two-factor settings, <c>UpdateSecurityStampAsync</c>. Every change of the stamp is saved through
/// <c>UserManager.UpdateUserAsync</c>, which runs the registered <see cref="IUserValidator{TUser}"/>s first: this one
/// ends the user's sessions that recorded another stamp at sign-in, except the request's own session (the browser that
/// made the change; Identity's templates then call <c>RefreshSignInAsync</c>, and the ticket store records the new stamp).
/// </summary>
/// <remarks>
/// An update that keeps the stamp (a profile change) ends nothing: the sessions recorded the same stamp. The cost is one
/// indexed delete per user update. The validator runs before the save: a save that fails afterwards has ended the sessions
/// anyway, the safe direction. A failure to end them fails the update (the stamp is not saved while they live on).
/// </remarks>
/// <typeparam name="TUser">Identity's user type.</typeparam>
internal sealed class CredentialChangeValidator<TUser>(
    ISessionManager sessions,
    ILogger<CredentialChangeValidator<TUser>> logger,
    IHttpContextAccessor? httpContextAccessor = null) : IUserValidator<TUser>
    where TUser : class
{
    public async Task<IdentityResult> ValidateAsync(UserManager<TUser> manager, TUser user)
    {
        ArgumentNullException.ThrowIfNull(manager);
        ArgumentNullException.ThrowIfNull(user);
        if (!manager.SupportsUserSecurityStamp || await StampOfAsync(manager, user).ConfigureAwait(false) is not { } stamp)
        {
            return IdentityResult.Success;
        }

        var userId = await manager.GetUserIdAsync(user).ConfigureAwait(false);
        if (string.IsNullOrEmpty(userId))
        {
            return IdentityResult.Success;
        }

        // Not the client's to cancel: the change of credentials is being saved whether or not it waits for the answer.
        var ended = await sessions.EndSignInsAsync(
            SessionSignInFilter.CredentialStampOtherThan(userId, SignInFacts.HashStamp(stamp)),
            SessionEndReason.CredentialsChanged,
            CurrentSession(),
            CancellationToken.None).ConfigureAwait(false);
        if (ended > 0)
        {
            SignInLog.CredentialChangeEndedSessions(logger, ended, userId.Length);
        }

        return IdentityResult.Success;
    }

    /// <summary>The stamp about to be saved; null for a user without one (Identity throws on a null stamp).</summary>
    private async Task<string?> StampOfAsync(UserManager<TUser> manager, TUser user)
    {
        try
        {
            return await manager.GetSecurityStampAsync(user).ConfigureAwait(false);
        }
        catch (InvalidOperationException ex)
        {
            SignInLog.CredentialStampUnavailable(logger, ex);
            return null;
        }
    }

    /// <summary>
    /// The public ID of the stored session of the request making the change: it stays (it is one of the user's only when
    /// the user changes their own credentials; an admin's session is not among the user's anyway). A session renewed in
    /// this request is still stored under its previous ID until the commit.
    /// </summary>
    private string? CurrentSession() =>
        httpContextAccessor?.HttpContext is { } httpContext && RequestSession.Of(httpContext)?.Session is { } session
            ? session.RenewFromKey is { } storedKey ? SessionIds.ToPublicId(storedKey) : session.Id
            : null;
}
