namespace SessionMiddleware.DependencyInjection;

/// <summary>Registered by <c>AddServerSideSessions</c>, so that <c>UseServerSideSessions</c> can tell it was called.</summary>
internal sealed class ServerSideSessionMarkerService;
