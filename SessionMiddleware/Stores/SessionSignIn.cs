namespace SessionMiddleware;

/// <summary>
/// What a session records about its last sign-in: when the user last proved who they are, and, for a sign-in through an
/// OpenID Connect provider, that provider's issuer, session (<c>sid</c>) and subject (<c>sub</c>), so the provider's
/// back-channel logout can find it; and a hash of the user's credential stamp (ASP.NET Core Identity's security stamp),
/// so a change of credentials can end the sessions signed in before it.
/// </summary>
/// <param name="At">When the user signed in (whole seconds). A sliding renewal of the sign-in does not change it.</param>
/// <param name="Issuer">The identity provider's issuer (<c>iss</c>), when the sign-in came from one.</param>
/// <param name="Sid">The provider's session ID (<c>sid</c> claim), when it sent one.</param>
/// <param name="Subject">The user's subject at the provider (<c>sub</c>), when the sign-in came from one.</param>
/// <param name="CredentialStamp">A hash of the user's credential stamp at the sign-in, or <see langword="null"/>.</param>
public sealed record SessionSignIn(
    DateTimeOffset At,
    string? Issuer = null,
    string? Sid = null,
    string? Subject = null,
    string? CredentialStamp = null);
