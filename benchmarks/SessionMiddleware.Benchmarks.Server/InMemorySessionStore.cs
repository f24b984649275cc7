using System.Collections.Concurrent;
using SessionMiddleware;

namespace SessionMiddleware.Benchmarks.Server;

/// <summary>
/// The <c>ours-memory</c> configuration's store: this library's middleware over a dictionary in the process, so that
/// the benchmark can split the difference to ASP.NET Core's session into the middleware's own cost (ours-memory vs
/// aspnet-memory) and the SQLite store's (ours-sqlite vs ours-memory). Not a product: it keeps everything in memory,
/// never expires anything and implements only what the three endpoints use.
/// </summary>
internal sealed class InMemorySessionStore(TimeProvider time) : IServerSideSessionStore
{
    private readonly ConcurrentDictionary<string, StoredSession> _rows = new(StringComparer.Ordinal);

    public Task MigrateAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

    public Task CheckSchemaAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

    public Task<StoredSession?> LoadAsync(byte[] key, CancellationToken cancellationToken = default) =>
        Task.FromResult(_rows.TryGetValue(Convert.ToBase64String(key), out var row) ? row : null);

    public Task<StoredSession> CreateAsync(NewSession session, CancellationToken cancellationToken = default)
    {
        var now = Now();
        var row = new StoredSession(session.Key, session.Data, 1, session.UserId, now, now);
        if (!_rows.TryAdd(Convert.ToBase64String(session.Key), row))
        {
            throw new InvalidOperationException("Duplicate session key.");
        }

        return Task.FromResult(row);
    }

    public Task<SessionUpdateResult> UpdateAsync(byte[] key, byte[] data, long expectedVersion, DateTimeOffset? expiresAt = null, CancellationToken cancellationToken = default)
    {
        var id = Convert.ToBase64String(key);
        while (true)
        {
            if (!_rows.TryGetValue(id, out var row))
            {
                return Task.FromResult(new SessionUpdateResult(SessionUpdateStatus.NotFound, 0));
            }

            if (row.Version != expectedVersion)
            {
                return Task.FromResult(new SessionUpdateResult(SessionUpdateStatus.Conflict, 0));
            }

            var updated = row with { Data = data, Version = row.Version + 1, LastAccessAt = Now() };
            if (_rows.TryUpdate(id, updated, row))
            {
                return Task.FromResult(new SessionUpdateResult(SessionUpdateStatus.Committed, updated.Version));
            }
        }
    }

    public Task<bool> TouchAsync(byte[] key, DateTimeOffset? expiresAt = null, CancellationToken cancellationToken = default)
    {
        var id = Convert.ToBase64String(key);
        if (_rows.TryGetValue(id, out var row))
        {
            _rows.TryUpdate(id, row with { LastAccessAt = Now() }, row);
            return Task.FromResult(true);
        }

        return Task.FromResult(false);
    }

    public Task<SessionLifetime?> DeleteAsync(byte[] key, CancellationToken cancellationToken = default) =>
        Task.FromResult(_rows.TryRemove(Convert.ToBase64String(key), out var row)
            ? new SessionLifetime(key, row.UserId, row.CreatedAt, row.ExpiresAt ?? row.LastAccessAt)
            : null);

    public Task<IReadOnlyList<SessionLifetime>> ListExpiredAsync(SessionLifetime? after, int maxRows, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<SessionLifetime>>([]);

    public Task<IReadOnlyList<byte[]>> DeleteExpiredAsync(IReadOnlyList<byte[]> keys, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<byte[]>>([]);

    public Task<SessionUpdateResult> RenewAsync(byte[] oldKey, long expectedVersion, NewSession renewed, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("Not used by the benchmark's endpoints.");

    public Task<IReadOnlyList<SessionInfo>> ListByUserAsync(string userId, int limit, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("Not used by the benchmark's endpoints.");

    public Task<IReadOnlyList<SessionInfo>> QueryAsync(SessionFilter filter, SessionCursor? after, int limit, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("Not used by the benchmark's endpoints.");

    public Task<long> CountAsync(SessionFilter filter, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("Not used by the benchmark's endpoints.");

    public Task<IReadOnlyList<SessionLifetime>> DeleteByUserAsync(string userId, byte[]? exceptKey, int maxRows, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("Not used by the benchmark's endpoints.");

    public Task<IReadOnlyList<SessionLifetime>> DeleteBySignInAsync(SessionSignInFilter filter, byte[]? exceptKey, int maxRows, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("Not used by the benchmark's endpoints.");

    private DateTimeOffset Now() => DateTimeOffset.FromUnixTimeSeconds(time.GetUtcNow().ToUnixTimeSeconds());
}
