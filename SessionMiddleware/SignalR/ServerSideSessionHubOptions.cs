namespace SessionMiddleware;

/// <summary>
/// How SignalR hub connections are tied to server-side sessions (<c>AddSignalR().AddServerSideSessions(...)</c>).
/// </summary>
public sealed class ServerSideSessionHubOptions
{
    /// <summary>
    /// Whether a hub connection needs a stored session. <see langword="false"/> (the default): a connection opened
    /// without one (an anonymous visitor who never wrote to the session) is allowed and is not tied to any session.
    /// <see langword="true"/>: such a connection is closed as soon as it is made, before the hub's
    /// <c>OnConnectedAsync</c> runs, and none of its hub methods runs.
    /// </summary>
    public bool RequireSession { get; set; }
}
