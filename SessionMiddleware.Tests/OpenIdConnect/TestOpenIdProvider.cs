using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace SessionMiddleware.Tests.OpenIdConnect;

/// <summary>
/// A small OpenID Connect provider on real Kestrel (127.0.0.1): discovery, JWKS (one RSA key), <c>/login?sub=</c> (signs the
/// browser in at the provider: a provider session, its <c>sid</c>, in the <c>idp_session</c> cookie), <c>/authorize</c>
/// (authorization code flow: state, nonce, PKCE S256, response_mode form_post or query) and <c>/token</c> (the code for an
/// id_token signed with <see cref="JsonWebTokenHandler"/>, carrying sid, sub, nonce, aud, iss). <see cref="LogoutToken"/>
/// makes back-channel logout tokens, valid or spoiled one way at a time.
/// </summary>
internal sealed class TestOpenIdProvider : IAsyncDisposable
{
    public const string ClientId = "session-tests";
    public const string ClientSecret = "session-tests-secret";
    public const string BackChannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout";
    private const string SessionCookie = "idp_session";
    private const string KeyId = "test-key-1";

    private readonly WebApplication _app;
    private readonly TimeProvider _time;
    private readonly List<RsaSecurityKey> _keys = [];
    private readonly ConcurrentDictionary<string, string> _subjectOfSid = new();
    private readonly ConcurrentDictionary<string, CodeGrant> _codes = new();

    private TestOpenIdProvider(WebApplication app, TimeProvider time)
    {
        _app = app;
        _time = time;
        SigningKey = new RsaSecurityKey(RSA.Create(2048)) { KeyId = KeyId };
        _keys.Add(SigningKey);
    }

    private sealed record CodeGrant(string ClientId, string RedirectUri, string? Nonce, string? CodeChallenge, string Subject, string Sid);

    /// <summary>The provider's issuer (<c>iss</c>), also its authority: <c>http://127.0.0.1:port</c>.</summary>
    public string Issuer { get; private set; } = "";

    /// <summary>The key the provider signs with now (published in its JWKS with every earlier one).</summary>
    public RsaSecurityKey SigningKey { get; private set; }

    /// <summary>Rolls over to a new signing key (a new key ID), keeping the old one published.</summary>
    public void RollSigningKey()
    {
        SigningKey = new RsaSecurityKey(RSA.Create(2048)) { KeyId = KeyId + "-" + (_keys.Count + 1) };
        _keys.Add(SigningKey);
    }

    /// <summary>How many authorization requests carried a PKCE challenge and a nonce (the handler sends both).</summary>
    public int AuthorizeRequests { get; private set; }

    public static async Task<TestOpenIdProvider> StartAsync(TimeProvider time)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var provider = new TestOpenIdProvider(app, time);
        app.MapGet("/.well-known/openid-configuration", provider.Discovery);
        app.MapGet("/jwks", provider.Jwks);
        app.MapGet("/login", provider.Login);
        app.MapGet("/authorize", provider.AuthorizeAsync);
        app.MapPost("/token", (Delegate)provider.TokenAsync);
        await app.StartAsync();
        provider.Issuer = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');
        return provider;
    }

    /// <summary>The provider session of <paramref name="sid"/>'s subject, as the provider recorded it.</summary>
    public string SubjectOf(string sid) => _subjectOfSid[sid];

    private IResult Discovery() => Results.Json(new Dictionary<string, object>
    {
        ["issuer"] = Issuer,
        ["authorization_endpoint"] = Issuer + "/authorize",
        ["token_endpoint"] = Issuer + "/token",
        ["jwks_uri"] = Issuer + "/jwks",
        ["response_types_supported"] = new[] { "code" },
        ["response_modes_supported"] = new[] { "form_post", "query" },
        ["subject_types_supported"] = new[] { "public" },
        ["id_token_signing_alg_values_supported"] = new[] { "RS256" },
        ["code_challenge_methods_supported"] = new[] { "S256" },
        ["backchannel_logout_supported"] = true,
        ["backchannel_logout_session_supported"] = true,
    });

    private IResult Jwks() => Results.Json(new
    {
        keys = _keys.Select(k => JsonWebKeyConverter.ConvertFromRSASecurityKey(new RsaSecurityKey(k.Rsa.ExportParameters(false)) { KeyId = k.KeyId }))
            .Select(k => new { kty = "RSA", use = "sig", alg = "RS256", kid = k.Kid, n = k.N, e = k.E })
            .ToList(),
    });

    /// <summary>Signs the browser in at the provider as <paramref name="sub"/>: a new provider session; answers its sid.</summary>
    private string Login(HttpContext context, string sub)
    {
        var sid = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(16));
        _subjectOfSid[sid] = sub;
        context.Response.Cookies.Append(SessionCookie, sid, new CookieOptions { HttpOnly = true, Path = "/" });
        return sid;
    }

    private async Task AuthorizeAsync(HttpContext context)
    {
        var query = context.Request.Query;
        if (query["client_id"] != ClientId || query["response_type"] != "code" || string.IsNullOrEmpty(query["redirect_uri"]))
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            return;
        }

        if (context.Request.Cookies[SessionCookie] is not { } sid || !_subjectOfSid.TryGetValue(sid, out var subject))
        {
            context.Response.StatusCode = StatusCodes.Status401Unauthorized; // no provider session: the test forgot /login
            return;
        }

        if (query["code_challenge_method"] == "S256" && !string.IsNullOrEmpty(query["code_challenge"]) && !string.IsNullOrEmpty(query["nonce"]))
        {
            AuthorizeRequests++;
        }

        var code = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(24));
        _codes[code] = new CodeGrant(ClientId, query["redirect_uri"]!, query["nonce"], query["code_challenge"], subject, sid);
        var redirectUri = query["redirect_uri"].ToString();
        var state = query["state"].ToString();
        if (query["response_mode"] == "form_post")
        {
            context.Response.ContentType = "text/html; charset=utf-8";
            var html = HtmlEncoder.Default;
            await context.Response.WriteAsync(
                $"""<html><body onload="document.forms[0].submit()"><form method="post" action="{html.Encode(redirectUri)}">""" +
                $"""<input type="hidden" name="code" value="{html.Encode(code)}"/><input type="hidden" name="state" value="{html.Encode(state)}"/>""" +
                "</form></body></html>");
            return;
        }

        context.Response.Redirect($"{redirectUri}?code={Uri.EscapeDataString(code)}&state={Uri.EscapeDataString(state)}");
    }

    private async Task<IResult> TokenAsync(HttpContext context)
    {
        var form = await context.Request.ReadFormAsync();
        if (form["grant_type"] != "authorization_code" || form["client_id"] != ClientId || form["client_secret"] != ClientSecret ||
            form["code"].ToString() is not { Length: > 0 } code || !_codes.TryRemove(code, out var grant) || form["redirect_uri"] != grant.RedirectUri)
        {
            return Results.Json(new { error = "invalid_grant" }, statusCode: StatusCodes.Status400BadRequest);
        }

        if (grant.CodeChallenge is not null &&
            Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(form["code_verifier"].ToString()))) != grant.CodeChallenge)
        {
            return Results.Json(new { error = "invalid_grant", error_description = "PKCE" }, statusCode: StatusCodes.Status400BadRequest);
        }

        var accessToken = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(24));
        var now = _time.GetUtcNow().ToUnixTimeSeconds();
        var idToken = new JsonObject
        {
            ["iss"] = Issuer,
            ["aud"] = ClientId,
            ["sub"] = grant.Subject,
            ["sid"] = grant.Sid,
            ["iat"] = now,
            ["nbf"] = now,
            ["exp"] = now + 300,
            ["auth_time"] = now,
            ["at_hash"] = Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(accessToken)).AsSpan(0, 16).ToArray()),
            ["name"] = grant.Subject,
        };
        if (grant.Nonce is not null)
        {
            idToken["nonce"] = grant.Nonce;
        }

        return Results.Json(new { access_token = accessToken, token_type = "Bearer", expires_in = 300, id_token = Sign(idToken, SigningKey, "JWT") });
    }

    /// <summary>A logout token for <paramref name="sid"/> and/or <paramref name="sub"/>, valid unless <paramref name="spoil"/> changes it.</summary>
    public string LogoutToken(string? sid, string? sub, Action<JsonObject>? spoil = null, SecurityKey? signWith = null)
    {
        var now = _time.GetUtcNow().ToUnixTimeSeconds();
        var payload = new JsonObject
        {
            ["iss"] = Issuer,
            ["aud"] = ClientId,
            ["iat"] = now,
            ["exp"] = now + 120,
            ["jti"] = Guid.NewGuid().ToString("N"),
            ["events"] = new JsonObject { [BackChannelLogoutEvent] = new JsonObject() },
        };
        if (sid is not null)
        {
            payload["sid"] = sid;
        }

        if (sub is not null)
        {
            payload["sub"] = sub;
        }

        spoil?.Invoke(payload);
        return Sign(payload, signWith ?? SigningKey, "logout+jwt");
    }

    /// <summary>Posts a logout token to <paramref name="endpoint"/> as the provider does (a form POST, no cookie).</summary>
    public static async Task<(HttpStatusCode Status, string? CacheControl, string Body)> PostLogoutAsync(Uri endpoint, string? token, string field = "logout_token")
    {
        using var client = new HttpClient(new HttpClientHandler { UseCookies = false, AllowAutoRedirect = false });
        using var content = new FormUrlEncodedContent(token is null ? [] : [new KeyValuePair<string, string>(field, token)]);
        using var response = await client.PostAsync(endpoint, content);
        return (response.StatusCode, response.Headers.CacheControl?.ToString(), await response.Content.ReadAsStringAsync());
    }

    private static string Sign(JsonObject payload, SecurityKey key, string type) =>
        new JsonWebTokenHandler().CreateToken(
            payload.ToJsonString(),
            new SigningCredentials(key, SecurityAlgorithms.RsaSha256),
            new Dictionary<string, object> { ["typ"] = type });

    /// <summary>A key the provider never published, with the provider's key ID: a forged signature.</summary>
    public static RsaSecurityKey ForgedKey() => new(RSA.Create(2048)) { KeyId = KeyId };

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        foreach (var key in _keys)
        {
            key.Rsa.Dispose();
        }
    }
}
