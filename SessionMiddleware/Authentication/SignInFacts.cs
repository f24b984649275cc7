using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;

namespace SessionMiddleware.Authentication;

/// <summary>
/// What a sign-in's principal tells the session to record (<see cref="SessionSignIn"/>): the OpenID Connect provider's
/// issuer, session and subject, for its back-channel logout, and a hash of ASP.NET Core Identity's security stamp, for
/// ending the sessions signed in before a change of credentials.
/// </summary>
internal static class SignInFacts
{
    /// <summary>Identity's default security stamp claim type (<c>ClaimsIdentityOptions.SecurityStampClaimType</c>).</summary>
    public const string DefaultSecurityStampClaimType = "AspNet.Identity.SecurityStamp";

    /// <summary>The claim types an OpenID Connect sign-in carries its <c>sid</c> under: as sent, or mapped by the handler's inbound claim map.</summary>
    private static readonly string[] SidClaimTypes = ["sid", ClaimTypes.Sid];

    private static readonly string[] SubjectClaimTypes = ["sub", ClaimTypes.NameIdentifier];

    /// <summary>The facts of <paramref name="principal"/>'s sign-in; its time is set when the commit records it.</summary>
    /// <param name="principal">The principal signing in.</param>
    /// <param name="securityStampClaimType">The claim type of Identity's security stamp.</param>
    /// <returns>The sign-in to record.</returns>
    public static SessionSignIn Of(ClaimsPrincipal principal, string securityStampClaimType)
    {
        ArgumentNullException.ThrowIfNull(principal);

        // A provider's claims carry its issuer; the app's own claims carry ClaimsIdentity.DefaultIssuer ("LOCAL AUTHORITY").
        var sid = FromProvider(principal, SidClaimTypes, issuer: null);
        var issuer = sid?.Issuer;
        var subject = FromProvider(principal, SubjectClaimTypes, issuer);
        issuer ??= subject?.Issuer;
        var stamp = principal.FindFirst(securityStampClaimType)?.Value;
        return new SessionSignIn(default, issuer, sid?.Value, subject?.Value, stamp is { Length: > 0 } ? HashStamp(stamp) : null);
    }

    /// <summary>The hash a session records for a credential stamp: the first 16 bytes of its SHA-256, lowercase hex (the stamp itself stays out of the database).</summary>
    /// <param name="stamp">The security stamp.</param>
    /// <returns>32 hexadecimal characters.</returns>
    public static string HashStamp(string stamp)
    {
        ArgumentNullException.ThrowIfNull(stamp);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(stamp)).AsSpan(0, 16));
    }

    private static Claim? FromProvider(ClaimsPrincipal principal, string[] types, string? issuer)
    {
        foreach (var type in types)
        {
            foreach (var claim in principal.FindAll(type))
            {
                if (claim.Value.Length > 0 &&
                    !string.Equals(claim.Issuer, ClaimsIdentity.DefaultIssuer, StringComparison.Ordinal) &&
                    (issuer is null || string.Equals(claim.Issuer, issuer, StringComparison.Ordinal)))
                {
                    return claim;
                }
            }
        }

        return null;
    }
}
