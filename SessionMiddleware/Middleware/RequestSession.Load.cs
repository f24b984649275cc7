using Microsoft.AspNetCore.Http;
using SessionMiddleware.Ids;
using SessionMiddleware.Cookies;
using SessionMiddleware.Diagnostics;
using SessionMiddleware.Logging;

namespace SessionMiddleware.Middleware;

/// <summary>The first step of a request: read the session header or cookie, load the row.</summary>
internal sealed partial class RequestSession
{
    /// <summary>
    /// Reads the session cookie and loads the session's row, once per request: from the middleware, or from the ticket store
    /// (<paramref name="early"/>) when authentication runs before the middleware. The session is kept on the request for the
    /// other. Returns null when the client went away or the load failed (logged; the middleware answers 503, and a
    /// failure is not retried within the request).
    /// </summary>
    public static Task<RequestSession?> LoadAsync(SessionRuntime runtime, HttpContext context, bool early)
    {
        // The middleware takes over a session the ticket store loaded early; a pipeline run again (an exception handler's
        // re-execution) loads the session again, as a new request would.
        if (Of(context) is { } loaded && (early || loaded.CurrentPhase == Phase.LoadedEarly))
        {
            return Task.FromResult<RequestSession?>(loaded);
        }

        if (context.Features.Get<LoadFailure>() is not null)
        {
            return NotLoaded;
        }

        // No valid cookie: a new empty session, and no database call at all.
        var secretId = ReadCookie(runtime, context);
        return secretId is null
            ? Task.FromResult<RequestSession?>(Attach(runtime, context, secretId: null, stored: null, early))
            : LoadRowAsync(runtime, context, secretId, early);
    }

    private static readonly Task<RequestSession?> NotLoaded = Task.FromResult<RequestSession?>(null);

    /// <summary>Keeps the request's session on the request, for the middleware or the ticket store that comes after.</summary>
    private static RequestSession Attach(SessionRuntime runtime, HttpContext context, byte[]? secretId, StoredSession? stored, bool early)
    {
        var request = new RequestSession(runtime, context, secretId, stored);
        context.Features.Set(request);
        if (early)
        {
            // Registered after the authentication handler's own callback, so it runs before it: a sliding renewal the
            // handler stores then finds the session Finished and commits itself.
            context.Response.OnStarting(static state => ((RequestSession)state).ResponseStartingBeforeMiddleware(), request);
        }
        else
        {
            request.CurrentPhase = Phase.InPipeline;
        }

        return request;
    }

    /// <summary>The secret ID of the request's session header or cookie, or null; a value rejected is logged and counted.</summary>
    private static byte[]? ReadCookie(SessionRuntime runtime, HttpContext context)
    {
        var secretId = runtime.Cookies.ReadSecretId(context.Request, out var rejectedReason);
        if (rejectedReason is not null)
        {
            if (runtime.Cookies.CameWithHeader(context.Request))
            {
                Log.HeaderRejected(runtime.Logger, runtime.Cookies.HeaderName!, rejectedReason);
            }
            else
            {
                Log.CookieRejected(runtime.Logger, rejectedReason);
            }
            var otherKeyRing = rejectedReason == SessionIdProtector.NotOurKeyRing;
            runtime.Metrics.CookieRejected(otherKeyRing ? SessionMetrics.RejectedUnprotectFailed : SessionMetrics.RejectedMalformed);
            if (otherKeyRing)
            {
                runtime.KeyRingRejections.Record(runtime.Logger);
            }
        }

        return secretId;
    }

    /// <summary>
    /// Loads the live row of the cookie's session (none when it is missing, expired or past AbsoluteTimeout: a new empty
    /// session) and keeps the session on the request; null when the client went away or the store failed (logged, and
    /// remembered on the request).
    /// </summary>
    private static async Task<RequestSession?> LoadRowAsync(SessionRuntime runtime, HttpContext context, byte[] secretId, bool early)
    {
        var key = SessionIds.ComputeKey(secretId);
        StoredSession? stored;
        try
        {
            using var timeout = runtime.StartIOTimeout(context.RequestAborted);
            stored = await runtime.Store.LoadAsync(key, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; there is nobody to answer.
            return null;
        }
        catch (Exception ex)
        {
            Log.LoadFailed(runtime.Logger, ex);
            context.Features.Set(LoadFailure.Instance);
            return null;
        }

        if (stored is not null && runtime.Expiry.IsPastAbsoluteTimeout(stored.CreatedAt))
        {
            // AbsoluteTimeout caps every session, a remembered sign-in too, whatever expiry its row recorded
            // (written before the timeout was set or shortened); the row is left for the cleaner, as any expired one.
            stored = null;
        }

        if (stored is null)
        {
            // Strict mode: an ID without a live row is never adopted; a write gets a new ID.
            Log.SessionNotFound(runtime.Logger, SessionIds.ToPublicId(key));
            runtime.Metrics.CookieRejected(SessionMetrics.RejectedUnknownSession);
        }

        return Attach(runtime, context, secretId, stored, early);
    }

    /// <summary>Marks a request whose session could not be loaded, so that it is loaded (and logged) once.</summary>
    private sealed class LoadFailure
    {
        public static readonly LoadFailure Instance = new();
    }
}
