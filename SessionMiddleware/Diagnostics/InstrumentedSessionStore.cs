using System.Diagnostics;

namespace SessionMiddleware.Diagnostics;

/// <summary>
/// The store as the request path and the cleaner see it: each call they make is timed
/// (<see cref="ServerSideSessionDiagnostics.StoreOperationDuration"/>) and the load and renew calls have their spans, so
/// that the request path reads as the steps of a request. Registered once, under <see cref="ServiceKey"/>; the other
/// callers (the session manager, the migration, the health check) use the store itself and are not timed.
/// </summary>
/// <remarks>
/// Without a listener a call goes straight to the store: no state machine, no timestamp. A span is the current activity
/// while the store call starts (the store's own spans are its children) and the caller's current activity is restored
/// at once, so that what the caller records next (the commit's outcome) lands on the caller's span.
/// </remarks>
internal sealed class InstrumentedSessionStore(IServerSideSessionStore inner, SessionMetrics metrics) : IServerSideSessionStore
{
    /// <summary>The service key of the instrumented store.</summary>
    public const string ServiceKey = "SessionMiddleware.Instrumented";

    /// <inheritdoc/>
    public Task MigrateAsync(CancellationToken cancellationToken = default) => inner.MigrateAsync(cancellationToken);

    /// <inheritdoc/>
    public Task CheckSchemaAsync(CancellationToken cancellationToken = default) => inner.CheckSchemaAsync(cancellationToken);

    /// <inheritdoc/>
    /// <remarks>The request's load has its span; a load within a span of ours (the commit's re-read after a conflict) is part of it.</remarks>
    public Task<StoredSession?> LoadAsync(byte[] key, CancellationToken cancellationToken = default)
    {
        var outer = Activity.Current;
        if (!SessionTracing.IsOurs(outer) && SessionTracing.Start("load", metrics.DbSystemName) is { } span)
        {
            var started = Stopwatch.GetTimestamp();
            var call = inner.LoadAsync(key, cancellationToken);
            Activity.Current = outer;
            return TimeAsync("load", span, started, call);
        }

        return metrics.StoreTimingEnabled
            ? TimeAsync("load", null, Stopwatch.GetTimestamp(), inner.LoadAsync(key, cancellationToken))
            : inner.LoadAsync(key, cancellationToken);
    }

    /// <inheritdoc/>
    public Task<StoredSession> CreateAsync(NewSession session, CancellationToken cancellationToken = default) =>
        metrics.StoreTimingEnabled
            ? TimeAsync("create", null, Stopwatch.GetTimestamp(), inner.CreateAsync(session, cancellationToken))
            : inner.CreateAsync(session, cancellationToken);

    /// <inheritdoc/>
    public Task<SessionUpdateResult> UpdateAsync(byte[] key, byte[] data, long expectedVersion, DateTimeOffset? expiresAt = null, CancellationToken cancellationToken = default) =>
        metrics.StoreTimingEnabled
            ? TimeAsync("update", null, Stopwatch.GetTimestamp(), inner.UpdateAsync(key, data, expectedVersion, expiresAt, cancellationToken))
            : inner.UpdateAsync(key, data, expectedVersion, expiresAt, cancellationToken);

    /// <inheritdoc/>
    public Task<bool> TouchAsync(byte[] key, DateTimeOffset? expiresAt = null, CancellationToken cancellationToken = default) =>
        metrics.StoreTimingEnabled
            ? TimeAsync("touch", null, Stopwatch.GetTimestamp(), inner.TouchAsync(key, expiresAt, cancellationToken))
            : inner.TouchAsync(key, expiresAt, cancellationToken);

    /// <inheritdoc/>
    /// <remarks>A renewal has its span, a child of the commit's.</remarks>
    public Task<SessionUpdateResult> RenewAsync(byte[] oldKey, long expectedVersion, NewSession renewed, CancellationToken cancellationToken = default)
    {
        var outer = Activity.Current;
        if (SessionTracing.Start("renew", metrics.DbSystemName) is { } span)
        {
            var started = Stopwatch.GetTimestamp();
            var call = inner.RenewAsync(oldKey, expectedVersion, renewed, cancellationToken);
            Activity.Current = outer;
            return TimeAsync("renew", span, started, call);
        }

        return metrics.StoreTimingEnabled
            ? TimeAsync("renew", null, Stopwatch.GetTimestamp(), inner.RenewAsync(oldKey, expectedVersion, renewed, cancellationToken))
            : inner.RenewAsync(oldKey, expectedVersion, renewed, cancellationToken);
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<SessionInfo>> ListByUserAsync(string userId, int limit, CancellationToken cancellationToken = default) =>
        inner.ListByUserAsync(userId, limit, cancellationToken);

    /// <inheritdoc/>
    public Task<IReadOnlyList<SessionInfo>> QueryAsync(SessionFilter filter, SessionCursor? after, int limit, CancellationToken cancellationToken = default) =>
        inner.QueryAsync(filter, after, limit, cancellationToken);

    /// <inheritdoc/>
    public Task<long> CountAsync(SessionFilter filter, CancellationToken cancellationToken = default) => inner.CountAsync(filter, cancellationToken);

    /// <inheritdoc/>
    public Task<IReadOnlyList<SessionLifetime>> DeleteByUserAsync(string userId, byte[]? exceptKey, int maxRows, CancellationToken cancellationToken = default) =>
        inner.DeleteByUserAsync(userId, exceptKey, maxRows, cancellationToken);

    /// <inheritdoc/>
    public Task<IReadOnlyList<SessionLifetime>> DeleteBySignInAsync(SessionSignInFilter filter, byte[]? exceptKey, int maxRows, CancellationToken cancellationToken = default) =>
        inner.DeleteBySignInAsync(filter, exceptKey, maxRows, cancellationToken);

    /// <inheritdoc/>
    public Task<SessionLifetime?> DeleteAsync(byte[] key, CancellationToken cancellationToken = default) =>
        metrics.StoreTimingEnabled
            ? TimeAsync("delete", null, Stopwatch.GetTimestamp(), inner.DeleteAsync(key, cancellationToken))
            : inner.DeleteAsync(key, cancellationToken);

    /// <inheritdoc/>
    public Task<IReadOnlyList<SessionLifetime>> ListExpiredAsync(SessionLifetime? after, int maxRows, CancellationToken cancellationToken = default) =>
        metrics.StoreTimingEnabled
            ? TimeAsync("cleanup", null, Stopwatch.GetTimestamp(), inner.ListExpiredAsync(after, maxRows, cancellationToken))
            : inner.ListExpiredAsync(after, maxRows, cancellationToken);

    /// <inheritdoc/>
    public Task<IReadOnlyList<byte[]>> DeleteExpiredAsync(IReadOnlyList<byte[]> keys, CancellationToken cancellationToken = default) =>
        metrics.StoreTimingEnabled
            ? TimeAsync("cleanup", null, Stopwatch.GetTimestamp(), inner.DeleteExpiredAsync(keys, cancellationToken))
            : inner.DeleteExpiredAsync(keys, cancellationToken);

    // The call was started before this awaits it (startedTimestamp taken just before), so a store that completes at
    // once is measured as it is.
    private async Task<T> TimeAsync<T>(string operation, Activity? span, long startedTimestamp, Task<T> call)
    {
        try
        {
            var result = await call.ConfigureAwait(false);
            metrics.RecordStore(operation, startedTimestamp, null);
            return result;
        }
        catch (Exception ex)
        {
            metrics.RecordStore(operation, startedTimestamp, ex);
            SessionTracing.Failed(span, ex);
            throw;
        }
        finally
        {
            span?.Dispose();
        }
    }
}
