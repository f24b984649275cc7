using Microsoft.AspNetCore.Http;

namespace SessionMiddleware.Middleware;

/// <summary>
/// The request whose app code the session middleware is running, for what that code calls: the session manager gives a
/// revoke's <c>OnEnded</c> its <see cref="HttpContext"/> and recognises the caller's renewed session. The mechanism of
/// <see cref="IHttpContextAccessor"/>, set only around the app's part of a request that goes through this middleware, so
/// that <c>AddServerSideSessions</c> does not register the accessor, which every request of the app would then pay for.
/// An app that has the accessor (<c>AddTicketStore</c> registers it) does not pay for both: the middleware then sets
/// nothing here and the manager reads the accessor.
/// </summary>
internal static class CurrentRequest
{
    private static readonly AsyncLocal<Holder?> Current = new();

    /// <summary>The request, or <see langword="null"/> outside the app's part of one (a background job, the cleaner).</summary>
    public static HttpContext? Context => Current.Value?.Context;

    /// <summary>Makes <paramref name="context"/> the current request for the code that runs from here, until the scope is disposed.</summary>
    public static Scope Enter(HttpContext context)
    {
        var holder = new Holder { Context = context };
        Current.Value = holder;
        return new Scope(holder);
    }

    /// <summary>Ends the request for work that outlives it (a task it started still sees the holder, now empty).</summary>
    internal readonly struct Scope(Holder? holder) : IDisposable
    {
        public void Dispose()
        {
            if (holder is not null)
            {
                holder.Context = null;
            }
        }
    }

    internal sealed class Holder
    {
        public HttpContext? Context;
    }
}
