using Dapper;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using SessionMiddleware.Storage;

namespace SessionMiddleware.PostgreSql;

/// <summary>
/// The store for several app servers: one PostgreSQL table, accessed through Dapper over the pooled connections
/// of one <see cref="NpgsqlDataSource"/>. Behaves as the SQLite store does; what differs is how concurrency is
/// handled: row locks instead of one writer, an advisory lock for the migration, <c>SKIP LOCKED</c> for cleanup.
/// Written against the core library's public API only.
/// </summary>
internal sealed class PostgreSqlSessionStore : IServerSideSessionStore
{
    /// <summary>SQLSTATE undefined_table.</summary>
    private const string UndefinedTable = "42P01";

    private readonly NpgsqlDataSource _dataSource;
    private readonly SessionSql _sql;
    private readonly PostgreSqlSessionSql _pg;
    private readonly SessionExpiry _expiry;
    private readonly ILogger<PostgreSqlSessionStore> _logger;

    public PostgreSqlSessionStore(NpgsqlDataSource dataSource, IOptions<ServerSideSessionOptions> options, TimeProvider timeProvider, ILogger<PostgreSqlSessionStore> logger)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(options);
        _dataSource = dataSource;
        _sql = new SessionSql(PostgreSqlDialect.Instance, options.Value.TableName);
        _pg = new PostgreSqlSessionSql(_sql);
        _expiry = new SessionExpiry(options.Value, timeProvider);
        _logger = logger;
    }

    /// <inheritdoc/>
    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var connectionScope = connection.ConfigureAwait(false);
        var result = await SessionTableMigrator.MigrateAsync(connection, _sql, _expiry.Parameters(), cancellationToken).ConfigureAwait(false);
        Log.MigratedPostgreSql(_logger, _sql.TableName, result.Created, result.UpgradedFromVersion, SessionTableSchema.Version, connection.PostgreSqlVersion.ToString());
    }

    /// <inheritdoc/>
    public async Task CheckSchemaAsync(CancellationToken cancellationToken = default)
    {
        var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var connectionScope = connection.ConfigureAwait(false);
        await SessionTableMigrator.CheckAsync(connection, _sql, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public Task<StoredSession?> LoadAsync(byte[] key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        return RunAsync(
            async (connection, token) =>
            {
                var row = await connection.QuerySingleOrDefaultAsync<SessionRow>(
                    new CommandDefinition(_sql.Load, new { Id = key }, cancellationToken: token)).ConfigureAwait(false);
                if (row is null)
                {
                    return null;
                }

                // An expired row stays for the cleaner, which raises its end before deleting it.
                return row.ExpiresAt < _expiry.UnixNow() ? null : row.ToStoredSession(key);
            },
            cancellationToken);
    }

    /// <inheritdoc/>
    public async Task<StoredSession> CreateAsync(NewSession session, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        var expiry = _expiry.Parameters();
        var expiresAt = session.ExpiresAt?.ToUnixTimeSeconds() ?? expiry.DefaultExpiresAt(expiry.Now);
        await RunAsync(
            (connection, token) => connection.ExecuteAsync(new CommandDefinition(
                _sql.Insert,
                new { Id = session.Key, session.UserId, session.Data, expiry.Now, Ip = session.IpAddress, session.UserAgent, ExpiresAt = expiresAt },
                cancellationToken: token)),
            cancellationToken).ConfigureAwait(false);
        return session.AsCreated(expiry.Now, expiresAt);
    }

    /// <inheritdoc/>
    public Task<SessionUpdateResult> UpdateAsync(byte[] key, byte[] data, long expectedVersion, DateTimeOffset? expiresAt = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(data);
        var expiry = _expiry.Parameters();
        return RunAsync(
            async (connection, token) =>
            {
                var version = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
                    _sql.Update,
                    new
                    {
                        Id = key,
                        Data = data,
                        ExpectedVersion = expectedVersion,
                        ExpiresAt = expiresAt?.ToUnixTimeSeconds(),
                        expiry.Now,
                        expiry.IdleSeconds,
                        expiry.AbsoluteSeconds,
                    },
                    cancellationToken: token)).ConfigureAwait(false);
                return await ResultAsync(connection, key, version, expiry.Now, token).ConfigureAwait(false);
            },
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task<bool> TouchAsync(byte[] key, DateTimeOffset? expiresAt = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        var expiry = _expiry.Parameters();
        return RunAsync(
            async (connection, token) => await connection.ExecuteAsync(new CommandDefinition(
                _sql.Touch,
                new { Id = key, ExpiresAt = expiresAt?.ToUnixTimeSeconds(), expiry.Now, expiry.IdleSeconds, expiry.AbsoluteSeconds },
                cancellationToken: token)).ConfigureAwait(false) > 0,
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task<SessionUpdateResult> RenewAsync(byte[] oldKey, long expectedVersion, NewSession renewed, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(oldKey);
        ArgumentNullException.ThrowIfNull(renewed);
        var expiry = _expiry.Parameters();
        return RunAsync(
            async (connection, token) =>
            {
                var version = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
                    _pg.Renew,
                    SessionSql.RenewParameters(oldKey, expectedVersion, renewed, expiry),
                    cancellationToken: token)).ConfigureAwait(false);
                return await ResultAsync(connection, oldKey, version, expiry.Now, token).ConfigureAwait(false);
            },
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<SessionInfo>> ListByUserAsync(string userId, int limit, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(userId);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        var now = _expiry.UnixNow();
        return RunAsync<IReadOnlyList<SessionInfo>>(
            async (connection, token) =>
            {
                var rows = await connection.QueryAsync<SessionInfoRow>(new CommandDefinition(
                    _sql.ListByUser, new { UserId = userId, Now = now, Limit = limit }, cancellationToken: token)).ConfigureAwait(false);
                return [.. rows.Select(r => r.ToSessionInfo())];
            },
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<SessionInfo>> QueryAsync(SessionFilter filter, SessionCursor? after, int limit, CancellationToken cancellationToken = default)
    {
        var command = _sql.Query(filter, after, limit, _expiry.Parameters());
        return RunAsync((connection, token) => command.QuerySessionsAsync(connection, token), cancellationToken);
    }

    /// <inheritdoc/>
    public Task<long> CountAsync(SessionFilter filter, CancellationToken cancellationToken = default)
    {
        var command = _sql.Count(filter, _expiry.Parameters());
        return RunAsync((connection, token) => command.CountAsync(connection, token), cancellationToken);
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<SessionLifetime>> DeleteByUserAsync(string userId, byte[]? exceptKey, int maxRows, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(userId);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxRows);
        return RunAsync<IReadOnlyList<SessionLifetime>>(
            async (connection, token) =>
            {
                var rows = await connection.QueryAsync<SessionLifetimeRow>(new CommandDefinition(
                    _pg.DeleteByUserBatch, new { UserId = userId, ExceptId = exceptKey, Limit = maxRows }, cancellationToken: token)).ConfigureAwait(false);
                return [.. rows.Select(r => r.ToSessionLifetime())];
            },
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task<SessionLifetime?> DeleteAsync(byte[] key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        return RunAsync(
            async (connection, token) => (await connection.QuerySingleOrDefaultAsync<SessionLifetimeRow>(new CommandDefinition(
                _sql.DeleteReturning, new { Id = key }, cancellationToken: token)).ConfigureAwait(false))?.ToSessionLifetime(),
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<SessionLifetime>> ListExpiredAsync(SessionLifetime? after, int maxRows, CancellationToken cancellationToken = default)
    {
        var parameters = SessionSql.ListExpiredParameters(after, maxRows, _expiry.UnixNow());
        return RunAsync<IReadOnlyList<SessionLifetime>>(
            async (connection, token) =>
            {
                var rows = await connection.QueryAsync<SessionLifetimeRow>(new CommandDefinition(
                    _sql.ListExpired, parameters, cancellationToken: token)).ConfigureAwait(false);
                return [.. rows.Select(r => r.ToSessionLifetime())];
            },
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<byte[]>> DeleteExpiredAsync(IReadOnlyList<byte[]> keys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        if (keys.Count == 0)
        {
            return Task.FromResult<IReadOnlyList<byte[]>>([]);
        }

        var now = _expiry.UnixNow();
        return RunAsync<IReadOnlyList<byte[]>>(
            async (connection, token) =>
            {
                var deleted = await connection.QueryAsync<byte[]>(new CommandDefinition(
                    _pg.DeleteExpiredKeys, new { Ids = keys.ToArray(), Now = now }, cancellationToken: token)).ConfigureAwait(false);
                return [.. deleted];
            },
            cancellationToken);
    }

    /// <summary>Runs <paramref name="work"/> on a pooled connection; a missing table becomes the error that names the migration.</summary>
    private async Task<T> RunAsync<T>(Func<NpgsqlConnection, CancellationToken, Task<T>> work, CancellationToken cancellationToken)
    {
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var connectionScope = connection.ConfigureAwait(false);
            return await work(connection, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (ex.SqlState == UndefinedTable)
        {
            throw SessionTableSchema.MissingTable(_sql.TableName, ex);
        }
    }

    /// <summary>Committed with the returned version; otherwise the row is live with another version (conflict) or gone.</summary>
    private async Task<SessionUpdateResult> ResultAsync(NpgsqlConnection connection, byte[] key, long? version, long now, CancellationToken cancellationToken)
    {
        if (version is { } v)
        {
            return new SessionUpdateResult(SessionUpdateStatus.Committed, v);
        }

        var live = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
            _sql.SelectLiveVersion, new { Id = key, Now = now }, cancellationToken: cancellationToken)).ConfigureAwait(false);
        return new SessionUpdateResult(live is null ? SessionUpdateStatus.NotFound : SessionUpdateStatus.Conflict, 0);
    }
}
