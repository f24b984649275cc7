using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;

namespace SessionMiddleware.OpenIdConnect.Internal;

/// <summary>
/// Validates a logout token as OpenID Connect Back-Channel Logout 1.0 asks, with the OpenID Connect scheme's own
/// settings: the signature with the provider's keys (its discovery document's and the scheme's
/// <see cref="TokenValidationParameters"/>'), <c>iss</c> the provider's issuer, <c>aud</c> the scheme's client ID, then the
/// claims (<see cref="LogoutTokenClaims"/>). Time comes from the app's <see cref="TimeProvider"/>, so the library's
/// lifetime check is off and <c>iat</c>/<c>exp</c> are checked here.
/// </summary>
internal sealed class LogoutTokenValidator(TimeProvider time)
{
    private readonly JsonWebTokenHandler _handler = new() { MapInboundClaims = false };
    private readonly Lock _refreshLock = new();
    private DateTimeOffset _lastRefresh = DateTimeOffset.MinValue;

    public async Task<(LogoutTokenRefusal Refusal, LogoutTokenFacts? Facts, Exception? Error)> ValidateAsync(
        string token,
        OpenIdConnectOptions scheme,
        TimeSpan issuedAtWindow,
        CancellationToken cancellationToken)
    {
        var configuration = scheme.Configuration ?? (scheme.ConfigurationManager is { } manager
            ? await manager.GetConfigurationAsync(cancellationToken).ConfigureAwait(false)
            : null);
        var result = await _handler.ValidateTokenAsync(token, Parameters(scheme, configuration)).ConfigureAwait(false);
        if (result.Exception is SecurityTokenSignatureKeyNotFoundException && await FreshConfigurationAsync(scheme, cancellationToken).ConfigureAwait(false) is { } fresh)
        {
            result = await _handler.ValidateTokenAsync(token, Parameters(scheme, fresh)).ConfigureAwait(false);
        }

        if (!result.IsValid)
        {
            return (Classify(result.Exception), null, result.Exception);
        }

        var jwt = (JsonWebToken)result.SecurityToken;
        var refusal = LogoutTokenClaims.Check(
            (jwt.InnerToken ?? jwt).EncodedPayload,
            time.GetUtcNow(),
            issuedAtWindow,
            scheme.TokenValidationParameters.ClockSkew,
            out var facts);
        return (refusal, facts, null);
    }

    /// <summary>
    /// The provider's discovery document and keys read again, at most once per <see cref="OpenIdConnectOptions.RefreshInterval"/>
    /// (a token with an unknown key ID may be forged): the provider may have rolled its keys since they were read. The
    /// configuration manager refreshes in the background, too late for this request, so the document is read here.
    /// </summary>
    private async Task<OpenIdConnectConfiguration?> FreshConfigurationAsync(OpenIdConnectOptions scheme, CancellationToken cancellationToken)
    {
        if (!scheme.RefreshOnIssuerKeyNotFound || scheme.Configuration is not null || scheme.ConfigurationManager is null ||
            string.IsNullOrEmpty(scheme.MetadataAddress) || scheme.Backchannel is null)
        {
            return null;
        }

        var now = time.GetUtcNow();
        lock (_refreshLock)
        {
            if (now - _lastRefresh < scheme.RefreshInterval)
            {
                return null;
            }

            _lastRefresh = now;
        }

        scheme.ConfigurationManager.RequestRefresh();
        var documents = new HttpDocumentRetriever(scheme.Backchannel) { RequireHttps = scheme.RequireHttpsMetadata };
        try
        {
            return await OpenIdConnectConfigurationRetriever.GetAsync(scheme.MetadataAddress, documents, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return null; // The provider cannot be reached: the token is refused for its unknown key, as it would be without this.
        }
    }

    private static TokenValidationParameters Parameters(OpenIdConnectOptions scheme, OpenIdConnectConfiguration? configuration)
    {
        var parameters = scheme.TokenValidationParameters.Clone();
        parameters.ValidateIssuer = true;
        parameters.ValidIssuers = [.. Issuers(parameters, configuration)];
        parameters.ValidIssuer = null;
        parameters.ValidateAudience = true;
        parameters.ValidAudiences = string.IsNullOrEmpty(scheme.ClientId) ? [] : [scheme.ClientId];
        parameters.ValidAudience = null;
        parameters.IssuerSigningKeys = [.. SigningKeys(parameters, configuration)];
        parameters.IssuerSigningKey = null;
        parameters.RequireSignedTokens = true;
        parameters.ValidateLifetime = false;
        parameters.RequireExpirationTime = false;
        parameters.ValidateTokenReplay = false;
        parameters.ValidTypes = null;
        return parameters;
    }

    private static IEnumerable<string> Issuers(TokenValidationParameters parameters, OpenIdConnectConfiguration? configuration)
    {
        if (!string.IsNullOrEmpty(configuration?.Issuer))
        {
            yield return configuration.Issuer;
        }

        if (!string.IsNullOrEmpty(parameters.ValidIssuer))
        {
            yield return parameters.ValidIssuer;
        }

        foreach (var issuer in parameters.ValidIssuers ?? [])
        {
            yield return issuer;
        }
    }

    private static IEnumerable<SecurityKey> SigningKeys(TokenValidationParameters parameters, OpenIdConnectConfiguration? configuration)
    {
        foreach (var key in configuration?.SigningKeys ?? [])
        {
            yield return key;
        }

        if (parameters.IssuerSigningKey is not null)
        {
            yield return parameters.IssuerSigningKey;
        }

        foreach (var key in parameters.IssuerSigningKeys ?? [])
        {
            yield return key;
        }
    }

    private static LogoutTokenRefusal Classify(Exception? exception) => exception switch
    {
        SecurityTokenInvalidSignatureException or SecurityTokenSignatureKeyNotFoundException => LogoutTokenRefusal.Signature,
        SecurityTokenInvalidIssuerException => LogoutTokenRefusal.Issuer,
        SecurityTokenInvalidAudienceException => LogoutTokenRefusal.Audience,
        SecurityTokenMalformedException or ArgumentException => LogoutTokenRefusal.Malformed,
        _ => LogoutTokenRefusal.Invalid,
    };
}
