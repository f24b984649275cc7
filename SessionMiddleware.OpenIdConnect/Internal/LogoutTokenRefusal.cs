namespace SessionMiddleware.OpenIdConnect.Internal;

/// <summary>Why a back-channel logout request was refused (answered 400).</summary>
internal enum LogoutTokenRefusal
{
    /// <summary>Not refused.</summary>
    None,

    /// <summary>Not a POST of an HTML form (<c>application/x-www-form-urlencoded</c>).</summary>
    NotFormPost,

    /// <summary>The form has no <c>logout_token</c>, an empty one, or more than one.</summary>
    TokenMissing,

    /// <summary>The token is not a JWT (JWS or JWE) this handler can read.</summary>
    Malformed,

    /// <summary>The signature does not verify with the scheme's keys, or the token is unsigned.</summary>
    Signature,

    /// <summary><c>iss</c> is not the provider's issuer.</summary>
    Issuer,

    /// <summary><c>aud</c> does not contain the scheme's client ID.</summary>
    Audience,

    /// <summary>Another check of the JWT failed.</summary>
    Invalid,

    /// <summary>No numeric <c>iat</c>.</summary>
    IssuedAtMissing,

    /// <summary><c>iat</c> lies outside <see cref="BackChannelLogoutOptions.IssuedAtWindow"/>.</summary>
    IssuedAtOutsideWindow,

    /// <summary><c>exp</c> has passed (or is not a number).</summary>
    Expired,

    /// <summary>No <c>events</c> object with the back-channel logout member.</summary>
    EventsMissing,

    /// <summary>A <c>nonce</c>, which a logout token must not carry.</summary>
    NoncePresent,

    /// <summary>Neither <c>sid</c> nor <c>sub</c>.</summary>
    SidAndSubjectMissing,

    /// <summary>No <c>jti</c>.</summary>
    TokenIdMissing,

    /// <summary>The same <c>jti</c> of the same issuer was accepted before.</summary>
    Replayed,
}

/// <summary>The text each refusal gives, in the log and in the response's <c>error_description</c>.</summary>
internal static class LogoutTokenRefusals
{
    public static string Describe(this LogoutTokenRefusal refusal) => refusal switch
    {
        LogoutTokenRefusal.NotFormPost => "The back-channel logout request must be a form POST.",
        LogoutTokenRefusal.TokenMissing => "The request must carry exactly one logout_token.",
        LogoutTokenRefusal.Malformed => "The logout token is not a well-formed JWT.",
        LogoutTokenRefusal.Signature => "The logout token's signature does not verify with the provider's keys.",
        LogoutTokenRefusal.Issuer => "The logout token's issuer is not the provider's.",
        LogoutTokenRefusal.Audience => "The logout token's audience is not this client.",
        LogoutTokenRefusal.Invalid => "The logout token is not valid.",
        LogoutTokenRefusal.IssuedAtMissing => "The logout token has no iat claim.",
        LogoutTokenRefusal.IssuedAtOutsideWindow => "The logout token's iat is too far from the current time.",
        LogoutTokenRefusal.Expired => "The logout token has expired.",
        LogoutTokenRefusal.EventsMissing => "The logout token has no events claim with the back-channel logout event.",
        LogoutTokenRefusal.NoncePresent => "A logout token must not carry a nonce.",
        LogoutTokenRefusal.SidAndSubjectMissing => "The logout token has neither sid nor sub.",
        LogoutTokenRefusal.TokenIdMissing => "The logout token has no jti claim.",
        LogoutTokenRefusal.Replayed => "The logout token was received before.",
        _ => "The logout request is not valid.",
    };

    /// <summary>The name logged for a refusal (a stable, lowercase word).</summary>
    public static string Name(this LogoutTokenRefusal refusal) => refusal switch
    {
        LogoutTokenRefusal.NotFormPost => "not_form_post",
        LogoutTokenRefusal.TokenMissing => "token_missing",
        LogoutTokenRefusal.Malformed => "malformed",
        LogoutTokenRefusal.Signature => "signature",
        LogoutTokenRefusal.Issuer => "issuer",
        LogoutTokenRefusal.Audience => "audience",
        LogoutTokenRefusal.IssuedAtMissing => "iat_missing",
        LogoutTokenRefusal.IssuedAtOutsideWindow => "iat_outside_window",
        LogoutTokenRefusal.Expired => "expired",
        LogoutTokenRefusal.EventsMissing => "events_missing",
        LogoutTokenRefusal.NoncePresent => "nonce_present",
        LogoutTokenRefusal.SidAndSubjectMissing => "sid_and_sub_missing",
        LogoutTokenRefusal.TokenIdMissing => "jti_missing",
        LogoutTokenRefusal.Replayed => "replayed",
        _ => "invalid",
    };
}
