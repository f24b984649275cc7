using System.Text.Json;
using Microsoft.IdentityModel.Tokens;

namespace SessionMiddleware.OpenIdConnect.Internal;

/// <summary>What a logout token asks, once it is valid: end the sessions of <see cref="Sid"/> (or of <see cref="Subject"/>) at <see cref="Issuer"/>.</summary>
internal sealed record LogoutTokenFacts(string Issuer, string? Sid, string? Subject, string TokenId, DateTimeOffset IssuedAt);

/// <summary>
/// The checks OpenID Connect Back-Channel Logout 1.0 (section 2.6) asks of a logout token's claims, after its signature,
/// issuer and audience were verified: <c>iat</c> within the window, <c>exp</c> not passed when present, the <c>events</c>
/// member, <c>sid</c> and/or <c>sub</c>, no <c>nonce</c>, a <c>jti</c>.
/// </summary>
internal static class LogoutTokenClaims
{
    public const string BackChannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout";

    public static LogoutTokenRefusal Check(string encodedPayload, DateTimeOffset now, TimeSpan window, TimeSpan clockSkew, out LogoutTokenFacts? facts)
    {
        facts = null;
        using var document = Parse(encodedPayload);
        if (document?.RootElement is not { ValueKind: JsonValueKind.Object } payload)
        {
            return LogoutTokenRefusal.Malformed;
        }

        if (NumericDate(payload, "iat") is not { } issuedAt)
        {
            return LogoutTokenRefusal.IssuedAtMissing;
        }

        if ((now - issuedAt).Duration() > window)
        {
            return LogoutTokenRefusal.IssuedAtOutsideWindow;
        }

        if (payload.TryGetProperty("exp", out _) && (NumericDate(payload, "exp") is not { } expires || expires + clockSkew <= now))
        {
            return LogoutTokenRefusal.Expired;
        }

        if (!payload.TryGetProperty("events", out var events) || events.ValueKind != JsonValueKind.Object ||
            !events.TryGetProperty(BackChannelLogoutEvent, out var logoutEvent) || logoutEvent.ValueKind != JsonValueKind.Object)
        {
            return LogoutTokenRefusal.EventsMissing;
        }

        if (payload.TryGetProperty("nonce", out _))
        {
            return LogoutTokenRefusal.NoncePresent;
        }

        var sid = Text(payload, "sid");
        var subject = Text(payload, "sub");
        if (sid is null && subject is null)
        {
            return LogoutTokenRefusal.SidAndSubjectMissing;
        }

        if (Text(payload, "jti") is not { } tokenId)
        {
            return LogoutTokenRefusal.TokenIdMissing;
        }

        // The issuer was verified by the token handler; a token without one never gets here.
        if (Text(payload, "iss") is not { } issuer)
        {
            return LogoutTokenRefusal.Issuer;
        }

        facts = new LogoutTokenFacts(issuer, sid, subject, tokenId, issuedAt);
        return LogoutTokenRefusal.None;
    }

    private static JsonDocument? Parse(string encodedPayload)
    {
        try
        {
            return JsonDocument.Parse(Base64UrlEncoder.DecodeBytes(encodedPayload));
        }
        catch (Exception e) when (e is JsonException or FormatException or ArgumentException)
        {
            return null;
        }
    }

    private static string? Text(JsonElement payload, string name) =>
        payload.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } text
            ? text
            : null;

    private static DateTimeOffset? NumericDate(JsonElement payload, string name)
    {
        if (!payload.TryGetProperty(name, out var value) || value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out var seconds) ||
            double.IsNaN(seconds) || seconds < 0 || seconds > 253_402_300_799)
        {
            return null;
        }

        return DateTimeOffset.FromUnixTimeSeconds((long)seconds);
    }
}
