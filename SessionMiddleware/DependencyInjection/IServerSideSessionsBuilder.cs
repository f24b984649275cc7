namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Returned by <c>AddServerSideSessions(...)</c>: what depends on the session services (another store, the
/// ticket store for cookie authentication, …) is an extension of this builder, so it cannot be called before
/// them or without them.
/// </summary>
public interface IServerSideSessionsBuilder
{
    /// <summary>The service collection the session services were added to.</summary>
    IServiceCollection Services { get; }
}
