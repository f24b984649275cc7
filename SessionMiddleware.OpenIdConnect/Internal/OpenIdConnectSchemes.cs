using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;

namespace SessionMiddleware.OpenIdConnect.Internal;

/// <summary>Which registered OpenID Connect scheme a back-channel logout endpoint serves.</summary>
internal static class OpenIdConnectSchemes
{
    public static string Resolve(AuthenticationOptions authentication, string? scheme)
    {
        var registered = authentication.Schemes
            .Where(s => s.HandlerType is { } type && typeof(OpenIdConnectHandler).IsAssignableFrom(type))
            .Select(s => s.Name)
            .ToList();
        if (scheme is not null)
        {
            return registered.Contains(scheme, StringComparer.Ordinal) ? scheme : throw new InvalidOperationException(
                $"MapBackChannelLogout(): '{scheme}' is not an OpenID Connect authentication scheme; register it with AddOpenIdConnect(\"{scheme}\", ...)" +
                (registered.Count > 0 ? $" or pass one of: {string.Join(", ", registered)}." : "."));
        }

        var challenge = authentication.DefaultChallengeScheme ?? authentication.DefaultScheme;
        if (challenge is not null && registered.Contains(challenge, StringComparer.Ordinal))
        {
            return challenge;
        }

        if (registered.Contains(OpenIdConnectDefaults.AuthenticationScheme, StringComparer.Ordinal))
        {
            return OpenIdConnectDefaults.AuthenticationScheme;
        }

        return registered.Count == 1 ? registered[0] : throw new InvalidOperationException(registered.Count == 0
            ? "MapBackChannelLogout() needs an OpenID Connect authentication scheme: register one with AddAuthentication().AddOpenIdConnect(...)."
            : $"MapBackChannelLogout(): several OpenID Connect schemes are registered ({string.Join(", ", registered)}); pass the scheme's name.");
    }
}
