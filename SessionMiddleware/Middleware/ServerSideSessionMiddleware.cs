using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace SessionMiddleware;

/// <summary>
/// Reads the session cookie, loads the session before the app runs, exposes it as
/// <see cref="HttpContext.Session"/>, and commits it when the response starts (and again at the end for
/// changes made after that).
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

    public async Task InvokeAsync(HttpContext context)
    {
        var committer = new SessionCommitter(_runtime, context);
        var session = await LoadAsync(context, committer).ConfigureAwait(false);
        if (session is null)
        {
            return;
        }

        committer.Attach(session);
        context.Features.Set<ISessionFeature>(new ServerSideSessionFeature(session));
        context.Response.OnStarting(SessionCommitter.OnStartingAsync, committer);
        try
        {
            await _next(context).ConfigureAwait(false);
        }
        catch
        {
            committer.Discard();
            throw;
        }
        finally
        {
            context.Features.Set<ISessionFeature>(null);
        }

        if (!context.Response.HasStarted)
        {
            try
            {
                await committer.CommitAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                Log.CommitFailed(_runtime.Logger, committer.SafeId(), ex);
                committer.Discard();
                context.Response.Clear();
                context.Response.StatusCode = StatusCodes.Status500InternalServerError;
            }
        }
        else
        {
            // Changes made after the response started: the status has been sent, so a failure can only be logged and rethrown.
            try
            {
                await committer.CommitAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                Log.CommitFailed(_runtime.Logger, committer.SafeId(), ex);
                throw;
            }
        }
    }

    /// <summary>Loads the session named by the cookie; null when the request was answered (store failure).</summary>
    private async Task<ServerSideSession?> LoadAsync(HttpContext context, SessionCommitter committer)
    {
        var cookie = context.Request.Cookies[_runtime.CookieName];
        if (cookie is null)
        {
            // No cookie: a new empty session, and no database call at all.
            return ServerSideSession.CreateNew(committer, _runtime.Options.MaxSessionBytes, _runtime.Now());
        }

        var secretId = _runtime.Protector.Unprotect(cookie, out var reason);
        if (secretId is null)
        {
            Log.CookieRejected(_runtime.Logger, reason ?? "invalid");
            return ServerSideSession.CreateNew(committer, _runtime.Options.MaxSessionBytes, _runtime.Now());
        }

        var key = SessionIdProtector.ComputeKey(secretId);
        StoredSession? stored;
        try
        {
            using var timeout = _runtime.StartIOTimeout(context.RequestAborted);
            stored = await _runtime.Store.LoadAsync(key, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; there is nobody to answer.
            return null;
        }
        catch (Exception ex)
        {
            Log.LoadFailed(_runtime.Logger, ex);
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            context.Response.Headers.RetryAfter = "1";
            return null;
        }

        if (stored is null)
        {
            // Strict mode: an ID without a live row is never adopted; a write gets a new ID.
            Log.SessionNotFound(_runtime.Logger, SessionIdProtector.ToPublicId(key));
            return ServerSideSession.CreateNew(committer, _runtime.Options.MaxSessionBytes, _runtime.Now());
        }

        var session = ServerSideSession.FromStored(committer, _runtime.Options.MaxSessionBytes, secretId, stored, out var dataError);
        if (dataError is not null)
        {
            Log.CorruptSessionData(_runtime.Logger, session.Id, dataError);
        }

        return session;
    }
}
