using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using SessionMiddleware.Session;

namespace SessionMiddleware.Middleware;

/// <summary>Exposes the request's server-side session as <see cref="HttpContext.Session"/>.</summary>
internal sealed class ServerSideSessionFeature(ServerSideSession session) : ISessionFeature
{
    public ISession Session
    {
        get => session;
        set => throw new NotSupportedException("The server-side session of a request cannot be replaced.");
    }
}
