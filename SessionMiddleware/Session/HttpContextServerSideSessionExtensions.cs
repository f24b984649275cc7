using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace SessionMiddleware;

/// <summary>Access to the server-side session of a request.</summary>
public static class HttpContextServerSideSessionExtensions
{
    /// <summary>
    /// The server-side session of this request (the same object as <see cref="HttpContext.Session"/>).
    /// </summary>
    /// <param name="context">The request's context.</param>
    /// <exception cref="InvalidOperationException">The request did not pass through <c>UseServerSideSessions</c>.</exception>
    public static IServerSideSession GetServerSideSession(this HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Features.Get<ISessionFeature>()?.Session as IServerSideSession
            ?? throw new InvalidOperationException(
                "This request has no server-side session. Call app.UseServerSideSessions() before the endpoints that use the session, " +
                "and services.AddServerSideSessions() when registering services.");
    }
}
