namespace SessionMiddleware.Tests.Infrastructure;

/// <summary>Wraps the real store to count calls and inject faults.</summary>
internal sealed class FaultyStore(IServerSideSessionStore inner) : IServerSideSessionStore
{
    public IServerSideSessionStore Inner { get; } = inner;

    public Func<Exception?>? OnLoad { get; set; }

    public Func<Exception?>? OnCreate { get; set; }

    public Func<Exception?>? OnUpdate { get; set; }

    public Func<Exception?>? OnDeleteExpired { get; set; }

    public Func<Exception?>? OnListExpired { get; set; }

    public int Loads;
    public int Creates;
    public int Updates;
    public int Touches;
    public int DeleteExpiredCalls;
    public int ListExpiredCalls;

    public int TotalCalls => Loads + Creates + Updates + Touches + DeleteExpiredCalls;

    public Task MigrateAsync(CancellationToken cancellationToken = default) => Inner.MigrateAsync(cancellationToken);

    public Task CheckSchemaAsync(CancellationToken cancellationToken = default) => Inner.CheckSchemaAsync(cancellationToken);

    /// <summary>Awaited inside LoadAsync before the real load, with the call's token (to make a load hang).</summary>
    public Func<CancellationToken, Task>? BeforeLoad { get; set; }

    public async Task<StoredSession?> LoadAsync(byte[] key, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref Loads);
        if (OnLoad?.Invoke() is { } ex)
        {
            throw ex;
        }

        if (BeforeLoad is { } before)
        {
            await before(cancellationToken);
        }

        return await Inner.LoadAsync(key, cancellationToken);
    }

    public Task<StoredSession> CreateAsync(NewSession session, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref Creates);
        return OnCreate?.Invoke() is { } ex ? throw ex : Inner.CreateAsync(session, cancellationToken);
    }

    public async Task<SessionUpdateResult> UpdateAsync(byte[] key, byte[] data, long expectedVersion, DateTimeOffset? expiresAt = null, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref Updates);
        if (OnUpdate?.Invoke() is { } ex)
        {
            throw ex;
        }

        var result = await Inner.UpdateAsync(key, data, expectedVersion, expiresAt, cancellationToken);
        if (result.Status == SessionUpdateStatus.Committed)
        {
            Committed.Enqueue((result.Version, data));
        }

        return result;
    }

    /// <summary>Every committed update: the version it produced and the data written.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<(long Version, byte[] Data)> Committed { get; } = new();

    /// <summary>Awaited inside TouchAsync before the real touch, with the call's token (to make a touch hang).</summary>
    public Func<CancellationToken, Task>? BeforeTouch { get; set; }

    public async Task<bool> TouchAsync(byte[] key, DateTimeOffset? expiresAt = null, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref Touches);
        if (BeforeTouch is { } before)
        {
            await before(cancellationToken);
        }

        return await Inner.TouchAsync(key, expiresAt, cancellationToken);
    }

    public Task<SessionLifetime?> DeleteAsync(byte[] key, CancellationToken cancellationToken = default) => Inner.DeleteAsync(key, cancellationToken);

    public async Task<SessionUpdateResult> RenewAsync(byte[] oldKey, long expectedVersion, NewSession renewed, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref Updates);
        if (OnUpdate?.Invoke() is { } ex)
        {
            throw ex;
        }

        return await Inner.RenewAsync(oldKey, expectedVersion, renewed, cancellationToken);
    }

    public Task<IReadOnlyList<SessionInfo>> ListByUserAsync(string userId, int limit, CancellationToken cancellationToken = default) => Inner.ListByUserAsync(userId, limit, cancellationToken);

    public Task<IReadOnlyList<SessionInfo>> QueryAsync(SessionFilter filter, SessionCursor? after, int limit, CancellationToken cancellationToken = default) => Inner.QueryAsync(filter, after, limit, cancellationToken);

    public Task<long> CountAsync(SessionFilter filter, CancellationToken cancellationToken = default) => Inner.CountAsync(filter, cancellationToken);

    public Task<IReadOnlyList<SessionLifetime>> DeleteByUserAsync(string userId, byte[]? exceptKey, int maxRows, CancellationToken cancellationToken = default) =>
        Inner.DeleteByUserAsync(userId, exceptKey, maxRows, cancellationToken);

    public Task<IReadOnlyList<SessionLifetime>> DeleteBySignInAsync(SessionSignInFilter filter, byte[]? exceptKey, int maxRows, CancellationToken cancellationToken = default) =>
        Inner.DeleteBySignInAsync(filter, exceptKey, maxRows, cancellationToken);

    public Task<IReadOnlyList<SessionLifetime>> ListExpiredAsync(SessionLifetime? after, int maxRows, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref ListExpiredCalls);
        return OnListExpired?.Invoke() is { } ex ? throw ex : Inner.ListExpiredAsync(after, maxRows, cancellationToken);
    }

    /// <summary>The cleaner's delete, after it raised the batch's ends: <see cref="OnDeleteExpired"/> fails it (a crash in between).</summary>
    public Task<IReadOnlyList<byte[]>> DeleteExpiredAsync(IReadOnlyList<byte[]> keys, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref DeleteExpiredCalls);
        return OnDeleteExpired?.Invoke() is { } ex ? throw ex : Inner.DeleteExpiredAsync(keys, cancellationToken);
    }
}
