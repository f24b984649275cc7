using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using SessionMiddleware.Cookies;
using SessionMiddleware.Diagnostics;
using SessionMiddleware.Ids;
using SessionMiddleware.Session;

namespace SessionMiddleware.Live;

/// <summary>
/// Ties a long-lived connection (a SignalR hub connection, a Blazor Server circuit) to the session of the request that
/// opened it.
/// </summary>
internal sealed class LiveSessionConnections(
    LiveSessionRegistry registry,
    SessionCookies cookies,
    [FromKeyedServices(InstrumentedSessionStore.ServiceKey)] IServerSideSessionStore store)
{
    /// <summary>The registry the leases come from.</summary>
    public LiveSessionRegistry Registry => registry;

    /// <summary>
    /// Holds the session of the request that opened a connection until the lease is disposed, or returns
    /// <see langword="null"/> when the request has no stored session. The request's loaded session is used when the
    /// connection runs inside that request (WebSockets, server-sent events); otherwise (SignalR's long polling hands the
    /// hub a copy of the request without its features) the session cookie is read and its row loaded.
    /// </summary>
    /// <param name="context">The request that opened the connection.</param>
    /// <param name="cancellationToken">Cancels the load.</param>
    /// <returns>The lease, or <see langword="null"/> for a connection without a session.</returns>
    public async ValueTask<LiveSessionLease?> HoldAsync(HttpContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Features.Get<ISessionFeature>()?.Session is ServerSideSession session)
        {
            return session is { IsNew: false, IsGone: false, RenewFromKey: null, Key: { } key }
                ? registry.Hold(key, session.UserId, registry.ExpiresAt(session.CreatedAt, session.LastAccessAt, session.KeepUntil))
                : null;
        }

        if (cookies.ReadSecretId(context.Request, out _) is not { } secretId)
        {
            return null;
        }

        var rowKey = SessionIds.ComputeKey(secretId);
        var row = await store.LoadAsync(rowKey, cancellationToken).ConfigureAwait(false);
        return row is null
            ? null
            : registry.Hold(rowKey, row.UserId, row.ExpiresAt ?? registry.ExpiresAt(row.CreatedAt, row.LastAccessAt, keepUntil: null));
    }
}
