using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using SessionMiddleware.Diagnostics;
using SessionMiddleware.Logging;

namespace SessionMiddleware.Middleware;

/// <summary>
/// Reads the session cookie, loads the session before the app runs, exposes it as
/// <see cref="HttpContext.Session"/>, and commits it when the response starts (and again at the end for
/// changes made after that). The one place that decides what a store failure answers.
/// </summary>
internal sealed class ServerSideSessionMiddleware
{
    private readonly RequestDelegate _next;
    private readonly SessionRuntime _runtime;

    // With an IHttpContextAccessor registered (AddTicketStore registers one) every request sets it already, and the
    // manager reads it: the middleware then sets no CurrentRequest of its own.
    private readonly bool _setsCurrentRequest;

    public ServerSideSessionMiddleware(RequestDelegate next, SessionRuntime runtime, IHttpContextAccessor? httpContextAccessor = null)
    {
        _next = next;
        _runtime = runtime;
        _setsCurrentRequest = httpContextAccessor is null;

        // Built with the pipeline, before the first request: the ticket store can tell an app without the middleware
        // from one whose authentication runs before it.
        runtime.MiddlewareInPipeline = true;
    }

    private enum StoreFailure
    {
        Load,
        CommitAfterApp,
        CommitOnStarting,
        CommitAfterResponseStarted,
    }

    public async Task InvokeAsync(HttpContext context)
    {
        // The ticket store loaded the session already when authentication runs first (WebApplication inserts
        // UseAuthentication() at the start of the pipeline when the app does not call it): that session is taken over.
        var request = await RequestSession.LoadAsync(_runtime, context, early: false).ConfigureAwait(false);
        if (request is null)
        {
            if (!context.RequestAborted.IsCancellationRequested)
            {
                AnswerFailure(StoreFailure.Load, exception: null, context, _runtime.Logger, request: null);
            }

            return;
        }

        request.EnterPipeline();
        var body = GuardNewSessionBody(request, context);
        context.Features.Set<ISessionFeature>(new ServerSideSessionFeature(request.Session));
        context.Response.OnStarting(OnStartingAsync, request);
        using var current = _setsCurrentRequest ? CurrentRequest.Enter(context) : default;
        try
        {
            await _next(context).ConfigureAwait(false);
            if (body is not null)
            {
                await body.FinishAsync().ConfigureAwait(false);
            }
        }
        catch
        {
            request.Discard();
            request.SettleLiveSession(final: true);
            throw;
        }
        finally
        {
            context.Features.Set<ISessionFeature>(null);
            request.LeavePipeline();
            if (body is not null)
            {
                context.Features.Set(body.Inner);
            }
        }

        var when = context.Response.HasStarted ? StoreFailure.CommitAfterResponseStarted : StoreFailure.CommitAfterApp;
        try
        {
            await CommitAsync(request, when).ConfigureAwait(false);
        }
        finally
        {
            request.SettleLiveSession(final: true);
        }
    }

    /// <summary>
    /// A request without a live session may create one, which NewSessionLimit may refuse: when the limit applies to its
    /// client, the response body waits for the commit's decision (<see cref="NewSessionResponseBody"/>).
    /// </summary>
    private NewSessionResponseBody? GuardNewSessionBody(RequestSession request, HttpContext context)
    {
        var limited = request.Session.IsNew && _runtime.NewSessions.Applies(context);
        NewSessionResponseBody? body = null;
        if (limited && context.Features.Get<IHttpResponseBodyFeature>() is { } serverBody)
        {
            var response = context.Response;
            body = new NewSessionResponseBody(serverBody, () => response.HasStarted);
            context.Features.Set<IHttpResponseBodyFeature>(body);
        }

        request.LimitsCreation = limited;
        request.ResponseBody = body;
        return body;
    }

    /// <summary>
    /// A change the ticket store made when no commit of this middleware follows: a sliding renewal as a bodiless response
    /// starts after the pipeline returned, or a sign-in the authentication middleware answered before this one ran.
    /// Committed now, and a failure answered as a commit at this point would be.
    /// </summary>
    internal static Task CommitLateAsync(RequestSession request) =>
        CommitAsync(request, request.Context.Response.HasStarted ? StoreFailure.CommitAfterResponseStarted : StoreFailure.CommitOnStarting);

    /// <summary>Response.OnStarting: commit before the first byte goes out, so the next request sees the write.</summary>
    private static Task OnStartingAsync(object state) => CommitAsync((RequestSession)state, StoreFailure.CommitOnStarting);

    private static async Task CommitAsync(RequestSession request, StoreFailure ifItFails)
    {
        var span = request.NeedsStore ? SessionTracing.Start("commit", request.Metrics.DbSystemName) : null;
        try
        {
            await request.CommitAsync(CancellationToken.None).ConfigureAwait(false);
            if (request.TakeCreationRefusal(out var retryAfter))
            {
                await AnswerTooManyNewSessionsAsync(request, ifItFails, retryAfter).ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            SessionTracing.Failed(span, ex, SessionMetrics.OutcomeFailed);
            if (AnswerFailure(ifItFails, ex, request.Context, request.Logger, request))
            {
                throw;
            }
        }
        finally
        {
            span?.Dispose();
            request.SettleLiveSession(final: false);
        }
    }

    /// <summary>
    /// The new session was refused (<see cref="ServerSideSessionOptions.NewSessionLimit"/>): a 429 of its own, with
    /// Retry-After in whole seconds and a short text body. The headers that say how a browser may treat any response of
    /// the site (<see cref="KeptOnRefusal"/>: CSP, HSTS, framing, CORS…) stay; the app's others (its Content-Type and
    /// length, cookies, caching, location) go. In OnStarting the app's body is dropped by <see cref="NewSessionResponseBody"/>,
    /// which started the response before any byte of it reached the server, and which writes the text instead.
    /// </summary>
    private static Task AnswerTooManyNewSessionsAsync(RequestSession request, StoreFailure when, TimeSpan retryAfter)
    {
        var context = request.Context;
        var response = context.Response;
        var headers = response.Headers;
        List<string>? remove = null;
        foreach (var name in headers.Keys)
        {
            if (!KeptOnRefusal.Contains(name))
            {
                (remove ??= []).Add(name);
            }
        }

        foreach (var name in remove ?? [])
        {
            headers.Remove(name);
        }

        response.StatusCode = StatusCodes.Status429TooManyRequests;
        if (context.Features.Get<IHttpResponseFeature>() is { } feature)
        {
            feature.ReasonPhrase = null;
        }

        headers.RetryAfter = Math.Max(1, (long)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        headers.CacheControl = "no-store";
        if (when == StoreFailure.CommitOnStarting)
        {
            // Started by the app's first write: the refusal's text replaces its body. Started otherwise (after the
            // middleware returned, by the server), no body of the app follows, and none is written.
            if (request.ResponseBody?.ReplaceAppBody(RefusalText) == true)
            {
                response.ContentType = RefusalContentType;
                response.ContentLength = RefusalText.Length;
            }

            return Task.CompletedTask;
        }

        // After the app, nothing sent yet.
        if (response.Body.CanSeek)
        {
            response.Body.SetLength(0);
        }

        response.ContentType = RefusalContentType;
        response.ContentLength = RefusalText.Length;
        return response.Body.WriteAsync(RefusalText).AsTask();
    }

    private const string RefusalContentType = "text/plain; charset=utf-8";

    private static readonly ReadOnlyMemory<byte> RefusalText = "Too many new sessions from this client: try again after the time in Retry-After.\n"u8.ToArray();

    /// <summary>The headers a refused new session's 429 keeps: those other middleware set for security and cross-origin reads.</summary>
    private static readonly System.Collections.Frozen.FrozenSet<string> KeptOnRefusal = System.Collections.Frozen.FrozenSet.ToFrozenSet(
        [
            "Content-Security-Policy", "Content-Security-Policy-Report-Only", "Strict-Transport-Security", "X-Frame-Options",
            "X-Content-Type-Options", "Referrer-Policy", "Permissions-Policy", "Cross-Origin-Opener-Policy",
            "Cross-Origin-Embedder-Policy", "Cross-Origin-Resource-Policy", "X-Permitted-Cross-Domain-Policies",
            "X-XSS-Protection", "Reporting-Endpoints", "Report-To", "NEL", "Access-Control-Allow-Origin",
            "Access-Control-Allow-Credentials", "Access-Control-Expose-Headers", "Vary", "Timing-Allow-Origin",
        ],
        StringComparer.OrdinalIgnoreCase);

    /// <summary>Logs a store failure and answers the client; returns whether the caller rethrows.</summary>
    private static bool AnswerFailure(StoreFailure failure, Exception? exception, HttpContext context, ILogger logger, RequestSession? request)
    {
        // Never a silently empty session, never a success for a lost write:
        //   failure                        answer                                           the request's changes
        //   load                           503 + Retry-After: 1; the app does not run       -
        //   commit after the app           500, the response cleared                        discarded (and logged so)
        //   commit in OnStarting           500, the headers cleared, rethrown               discarded
        //   commit after the response      nothing can be answered (the status is sent);    -
        //   started                        rethrown
        // In OnStarting the body belongs to the write that started the response, so only the headers are cleared.
        var response = context.Response;
        if (failure == StoreFailure.Load)
        {
            // Logged where the load failed (RequestSession.LoadAsync).
            response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            response.Headers.RetryAfter = "1";
            return false;
        }

        Log.CommitFailed(logger, request!.SafeId(), exception!);
        request.CommitFailed();
        switch (failure)
        {
            case StoreFailure.CommitAfterApp:
                request.Discard();
                response.Clear();
                response.StatusCode = StatusCodes.Status500InternalServerError;
                return false;

            case StoreFailure.CommitOnStarting:
                request.Discard(logChanges: false);
                response.Headers.Clear();
                response.StatusCode = StatusCodes.Status500InternalServerError;
                return true;

            default:
                return true;
        }
    }
}
