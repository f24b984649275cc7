using System.Text.Json;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace SessionMiddleware.OpenIdConnect.Internal;

/// <summary>
/// The endpoint the identity provider posts a logout token to: validates it (<see cref="LogoutTokenValidator"/>), refuses
/// a replayed <c>jti</c>, ends the sessions of the provider session (<c>sid</c>) or, without one, of the subject
/// (<c>sub</c>) at that issuer, and answers 200, or 400 with an OAuth error; never cached.
/// </summary>
internal sealed class BackChannelLogoutEndpoint(
    string scheme,
    IOptionsMonitor<OpenIdConnectOptions> schemes,
    BackChannelLogoutOptions options,
    ISessionManager sessions,
    TimeProvider time,
    BackChannelLogoutMetrics metrics,
    ILogger logger)
{
    private const string LogoutTokenField = "logout_token";

    private readonly LogoutTokenValidator _validator = new(time);
    private readonly LogoutTokenReplayCache _replays = new(options.ReplayCacheSize);

    public string Scheme => scheme;

    public async Task HandleAsync(HttpContext context)
    {
        var response = context.Response;
        response.Headers.CacheControl = "no-store";
        response.Headers.Pragma = "no-cache";
        var cancellationToken = context.RequestAborted;

        var token = await ReadTokenAsync(context.Request, cancellationToken).ConfigureAwait(false);
        if (token is null)
        {
            var refusal = HttpMethods.IsPost(context.Request.Method) && context.Request.HasFormContentType ? LogoutTokenRefusal.TokenMissing : LogoutTokenRefusal.NotFormPost;
            await RefuseAsync(response, refusal, cancellationToken).ConfigureAwait(false);
            return;
        }

        var (result, facts, error) = await _validator.ValidateAsync(token, schemes.Get(scheme), options.IssuedAtWindow, cancellationToken).ConfigureAwait(false);
        if (error is not null)
        {
            // The library's message may quote parts of the token: the exception's type says enough.
            BackChannelLogoutLog.TokenInvalid(logger, scheme, result.Name(), error.GetType().Name);
        }

        if (result == LogoutTokenRefusal.None && !_replays.TryAdd(facts!.Issuer, facts.TokenId, facts.IssuedAt + options.IssuedAtWindow, time.GetUtcNow()))
        {
            result = LogoutTokenRefusal.Replayed;
        }

        if (result != LogoutTokenRefusal.None)
        {
            await RefuseAsync(response, result, cancellationToken).ConfigureAwait(false);
            return;
        }

        await EndSessionsAsync(facts!, cancellationToken).ConfigureAwait(false);
        response.StatusCode = StatusCodes.Status200OK;
    }

    private async Task EndSessionsAsync(LogoutTokenFacts facts, CancellationToken cancellationToken)
    {
        var (filter, kind) = facts.Sid is { } sid
            ? (SessionSignInFilter.ProviderSession(facts.Issuer, sid), "session")
            : (SessionSignInFilter.ProviderSubject(facts.Issuer, facts.Subject!), "subject");
        int ended;
        try
        {
            ended = await sessions.EndSignInsAsync(filter, SessionEndReason.ProviderSignedOut, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Not a replay when the provider sends it again: the sessions may not all have ended.
            _replays.Remove(facts.Issuer, facts.TokenId);
            BackChannelLogoutLog.Failed(logger, facts.Issuer, scheme, e);
            throw;
        }

        if (ended > 0)
        {
            metrics.Logout(BackChannelLogoutMetrics.Ended);
            BackChannelLogoutLog.SessionsEnded(logger, facts.Issuer, ended, kind, scheme);
        }
        else
        {
            metrics.Logout(BackChannelLogoutMetrics.NoSession);
            BackChannelLogoutLog.NoSessionMatched(logger, facts.Issuer, kind, scheme);
        }
    }

    private static async Task<string?> ReadTokenAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (!HttpMethods.IsPost(request.Method) || !request.HasFormContentType)
        {
            return null;
        }

        IFormCollection form;
        try
        {
            form = await request.ReadFormAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (InvalidDataException)
        {
            return null;
        }

        var values = form[LogoutTokenField];
        return values.Count == 1 && !string.IsNullOrEmpty(values[0]) ? values[0] : null;
    }

    private async Task RefuseAsync(HttpResponse response, LogoutTokenRefusal refusal, CancellationToken cancellationToken)
    {
        metrics.Logout(BackChannelLogoutMetrics.Refused);
        BackChannelLogoutLog.Refused(logger, scheme, refusal.Name(), refusal.Describe());
        if (refusal == LogoutTokenRefusal.NotFormPost)
        {
            response.Headers.Allow = HttpMethods.Post;
        }

        response.StatusCode = StatusCodes.Status400BadRequest;
        response.ContentType = "application/json";
        using var body = new MemoryStream();
        using (var json = new Utf8JsonWriter(body))
        {
            json.WriteStartObject();
            json.WriteString("error", "invalid_request");
            json.WriteString("error_description", refusal.Describe());
            json.WriteEndObject();
        }

        await response.Body.WriteAsync(body.GetBuffer().AsMemory(0, (int)body.Length), cancellationToken).ConfigureAwait(false);
    }
}
