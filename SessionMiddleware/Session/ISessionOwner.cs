using Microsoft.Extensions.Logging;

namespace SessionMiddleware.Session;

/// <summary>
/// What a <see cref="ServerSideSession"/> asks of the request that owns it: writing it back, and whether the response
/// has started (after which a new cookie can no longer be sent). One reference instead of two delegates per request.
/// </summary>
internal interface ISessionOwner
{
    /// <summary>Commits the session now (<c>ISession.CommitAsync</c>).</summary>
    Task CommitAsync(CancellationToken cancellationToken);

    /// <summary>Whether the response has started.</summary>
    bool ResponseHasStarted { get; }

    /// <summary>The token <see cref="IServerSideSession.Ended"/> returns: the session is held until it ends.</summary>
    CancellationToken HoldUntilEnded();

    /// <summary>The request path's logger (what the session's typed-value reads log to).</summary>
    ILogger Logger { get; }
}
