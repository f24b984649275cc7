using Microsoft.Extensions.DependencyInjection;

namespace SessionMiddleware.DependencyInjection;

/// <summary>The builder <c>AddServerSideSessions(...)</c> returns.</summary>
internal sealed class ServerSideSessionsBuilder(IServiceCollection services) : IServerSideSessionsBuilder
{
    public IServiceCollection Services { get; } = services;
}
