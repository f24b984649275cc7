using Microsoft.Extensions.Diagnostics.HealthChecks;
using SessionMiddleware.Diagnostics;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the session store's health check.</summary>
public static class ServerSideSessionHealthCheckExtensions
{
    /// <summary>
    /// Adds a health check of the server-side session store: Healthy when the session table exists at the schema version
    /// with the expected shape; <paramref name="failureStatus"/> with the reason when the store cannot be reached or the
    /// table is missing or of another shape; Degraded when the cleaner's last run failed or it has not completed a run
    /// for 3 × <see cref="SessionMiddleware.ServerSideSessionOptions.CleanupInterval"/>. The result's data: <c>store</c>
    /// (<c>sqlite</c>, <c>postgresql</c>, <c>other_sql</c>), <c>schema_version</c>, <c>last_cleanup</c> and
    /// <c>rows_deleted</c> (of the last run).
    /// </summary>
    /// <param name="builder">The builder <c>AddHealthChecks()</c> returned.</param>
    /// <param name="name">The check's name; default <c>server-side-sessions</c>.</param>
    /// <param name="failureStatus">The status when the store cannot be used; <see langword="null"/> for <see cref="HealthStatus.Unhealthy"/>.</param>
    /// <param name="tags">Tags to filter health checks by, or <see langword="null"/>.</param>
    /// <returns>The builder, for chaining.</returns>
    public static IHealthChecksBuilder AddServerSideSessionStore(
        this IHealthChecksBuilder builder,
        string name = "server-side-sessions",
        HealthStatus? failureStatus = null,
        IEnumerable<string>? tags = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrEmpty(name);
        return builder.Add(new HealthCheckRegistration(
            name,
            static services => ActivatorUtilities.CreateInstance<SessionStoreHealthCheck>(services),
            failureStatus,
            tags));
    }
}
