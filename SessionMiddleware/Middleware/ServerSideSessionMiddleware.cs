using System.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using SessionMiddleware.Cookies;
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

    public ServerSideSessionMiddleware(RequestDelegate next, SessionRuntime runtime)
    {
        _next = next;
        _runtime = runtime;

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
        context.Features.Set<ISessionFeature>(new ServerSideSessionFeature(request.Session));
        context.Response.OnStarting(OnStartingAsync, request);
        try
        {
            await _next(context).ConfigureAwait(false);
        }
        catch
        {
            request.Discard();
            throw;
        }
        finally
        {
            context.Features.Set<ISessionFeature>(null);
            request.LeavePipeline();
        }

        var when = context.Response.HasStarted ? StoreFailure.CommitAfterResponseStarted : StoreFailure.CommitAfterApp;
        await CommitAsync(request, when).ConfigureAwait(false);
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
        var span = request.NeedsStore ? SessionTracing.Start("commit", request.Metrics, request.Store) : null;
        try
        {
            await request.CommitAsync(CancellationToken.None).ConfigureAwait(false);
            if (request.TakeCreationRefusal(out var retryAfter))
            {
                AnswerTooManyNewSessions(request.Context.Response, ifItFails, retryAfter);
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
        }
    }

    /// <summary>
    /// The new session was refused (<see cref="ServerSideSessionOptions.NewSessionLimit"/>): 429 with Retry-After in
    /// whole seconds. In OnStarting the body that the app is about to write still follows; only the headers are replaced.
    /// </summary>
    private static void AnswerTooManyNewSessions(HttpResponse response, StoreFailure when, TimeSpan retryAfter)
    {
        if (when == StoreFailure.CommitOnStarting)
        {
            response.Headers.Clear();
        }
        else
        {
            response.Clear();
        }

        response.StatusCode = StatusCodes.Status429TooManyRequests;
        response.Headers.RetryAfter = Math.Max(1, (long)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

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
