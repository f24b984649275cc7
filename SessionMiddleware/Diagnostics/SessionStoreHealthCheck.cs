using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace SessionMiddleware.Diagnostics;

/// <summary>
/// The session store's health: the store's schema check (the table exists at the schema version, with the expected
/// shape) and the cleaner's last run. Registered by <c>AddServerSideSessionStore</c>.
/// </summary>
internal sealed class SessionStoreHealthCheck(
    IServerSideSessionStore store,
    CleanupStatus cleanup,
    SessionStoreDescription description,
    IOptions<ServerSideSessionOptions> options,
    TimeProvider timeProvider) : IHealthCheck
{
    /// <summary>The cleaner counts as stalled after this many cleanup intervals without a completed run.</summary>
    public const int StalledAfterIntervals = 3;

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        var last = cleanup.Last;
        var data = new Dictionary<string, object>
        {
            ["store"] = description.DbSystemName,
            ["rows_deleted"] = last.RowsDeleted,
        };
        if (last.At is { } at)
        {
            data["last_cleanup"] = at;
        }

        try
        {
            await store.CheckSchemaAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex)
        {
            return new HealthCheckResult(context.Registration.FailureStatus, $"The session store cannot be used: {ex.Message}", ex, data);
        }

        if (description.SchemaVersion is { } version)
        {
            data["schema_version"] = version;
        }

        if (!last.Succeeded)
        {
            return HealthCheckResult.Degraded($"The last cleanup of expired sessions failed: {last.Error}", data: data);
        }

        var limit = options.Value.CleanupInterval * StalledAfterIntervals;
        var since = last.At ?? cleanup.Since;
        if (timeProvider.GetUtcNow() - since > limit)
        {
            return HealthCheckResult.Degraded(
                $"The cleanup of expired sessions has not completed a run since {since:O} ({StalledAfterIntervals} × CleanupInterval = {limit}).",
                data: data);
        }

        return HealthCheckResult.Healthy("The session table is ready and the cleaner runs.", data);
    }
}
