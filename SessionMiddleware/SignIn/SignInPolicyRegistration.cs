using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using SessionMiddleware.Diagnostics;

namespace SessionMiddleware.SignIn;

/// <summary>
/// What <c>AddTicketStore()</c> registers for the sign-in policies: the Identity user validator that ends the other
/// sessions on a change of credentials, and the authorization result handler that challenges a sign-in that is not
/// recent enough.
/// </summary>
internal static class SignInPolicyRegistration
{
    public static void AddSignInPolicies(IServiceCollection services)
    {
        // Open generic: for whatever user type AddIdentity/AddIdentityCore registers, before or after this call. Harmless without Identity.
        services.TryAddEnumerable(ServiceDescriptor.Scoped(typeof(IUserValidator<>), typeof(CredentialChangeValidator<>)));
        AddRecentSignInResultHandler(services);
    }

    /// <summary>
    /// Registers <see cref="RecentSignInResultHandler"/> around the result handler registered so far (the app's own, or
    /// the framework's default): <c>AddAuthorization()</c> registers the default only when none is, so it may come before
    /// or after. A handler the app registers after this call replaces this one. Called twice, it wraps itself, harmlessly:
    /// the inner one sees the challenge, not a forbid.
    /// </summary>
    private static void AddRecentSignInResultHandler(IServiceCollection services)
    {
        var existing = services.LastOrDefault(static d => d.ServiceType == typeof(IAuthorizationMiddlewareResultHandler) && !d.IsKeyedService);
        if (existing is not null)
        {
            services.Remove(existing);
        }

        services.Add(ServiceDescriptor.Describe(
            typeof(IAuthorizationMiddlewareResultHandler),
            sp => new RecentSignInResultHandler(InnerOf(sp, existing), sp.GetRequiredService<SessionMetrics>(), sp.GetRequiredService<ILogger<RecentSignInResultHandler>>()),
            existing?.Lifetime ?? ServiceLifetime.Singleton));
    }

    private static IAuthorizationMiddlewareResultHandler InnerOf(IServiceProvider services, ServiceDescriptor? existing) => existing switch
    {
        null => new AuthorizationMiddlewareResultHandler(),
        { ImplementationInstance: IAuthorizationMiddlewareResultHandler instance } => instance,
        { ImplementationFactory: { } factory } => (IAuthorizationMiddlewareResultHandler)factory(services),
        { ImplementationType: { } type } => (IAuthorizationMiddlewareResultHandler)ActivatorUtilities.CreateInstance(services, type),
        _ => new AuthorizationMiddlewareResultHandler(),
    };
}
