using System.Diagnostics;
using Microsoft.AspNetCore.Authentication;
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
        if (_runtime.TicketStoreEnabled && context.Features.Get<IAuthenticationFeature>() is not null)
        {
            // UseAuthentication() ran first: it read the sign-in before this request had its session.
            throw new InvalidOperationException(
                "AddTicketStore() keeps the sign-in in the server-side session, so app.UseServerSideSessions() must come before " +
                "app.UseAuthentication() (and UseAuthorization and the endpoints) in the pipeline.");
        }

        var secretId = _runtime.Cookies.ReadSecretId(context.Request, out var rejectedReason);
        if (rejectedReason is not null)
        {
            Log.CookieRejected(_runtime.Logger, rejectedReason);
            var otherKeyRing = rejectedReason == SessionIdProtector.NotOurKeyRing;
            _runtime.Metrics.CookieRejected(otherKeyRing ? SessionMetrics.RejectedUnprotectFailed : SessionMetrics.RejectedMalformed);
            if (otherKeyRing)
            {
                _runtime.KeyRingRejections.Record(_runtime.Logger);
            }
        }

        // No valid cookie: a new empty session, and no database call at all.
        StoredSession? stored = null;
        if (secretId is not null)
        {
            var key = SessionIdProtector.ComputeKey(secretId);
            var loadSpan = SessionTracing.Start("load", _runtime.Metrics, _runtime.Store);
            try
            {
                using var timeout = _runtime.StartIOTimeout(context.RequestAborted);
                stored = await _runtime.Metrics.TimeAsync(_runtime.Store, "load", Stopwatch.GetTimestamp(), _runtime.Store.LoadAsync(key, timeout.Token)).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
            {
                // The client went away; there is nobody to answer.
                return;
            }
            catch (Exception ex)
            {
                SessionTracing.Failed(loadSpan, ex);
                AnswerFailure(StoreFailure.Load, ex, context, _runtime.Logger, request: null);
                return;
            }
            finally
            {
                loadSpan?.Dispose();
            }

            if (stored is not null && _runtime.Expiry.IsPastAbsoluteTimeout(stored.CreatedAt))
            {
                // AbsoluteTimeout caps every session, a remembered sign-in too, whatever expiry its row recorded
                // (written before the timeout was set or shortened); the row is left for the cleaner, as any expired one.
                stored = null;
            }

            if (stored is null)
            {
                // Strict mode: an ID without a live row is never adopted; a write gets a new ID.
                Log.SessionNotFound(_runtime.Logger, SessionIdProtector.ToPublicId(key));
                _runtime.Metrics.CookieRejected(SessionMetrics.RejectedUnknownSession);
            }
        }

        var request = new RequestSession(_runtime, context, secretId, stored);
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
        }

        var when = context.Response.HasStarted ? StoreFailure.CommitAfterResponseStarted : StoreFailure.CommitAfterApp;
        await CommitAsync(request, when).ConfigureAwait(false);
    }

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
    private static bool AnswerFailure(StoreFailure failure, Exception exception, HttpContext context, ILogger logger, RequestSession? request)
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
            Log.LoadFailed(logger, exception);
            response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            response.Headers.RetryAfter = "1";
            return false;
        }

        Log.CommitFailed(logger, request!.SafeId(), exception);
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
