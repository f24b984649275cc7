using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using SessionMiddleware.PostgreSql.ChangeFeed;
using SessionMiddleware.Storage;
using static SessionMiddleware.PostgreSql.PostgreSqlParameters;

namespace SessionMiddleware.PostgreSql;

/// <summary>
/// The store for several app servers: one PostgreSQL table, accessed through Dapper over the pooled connections
/// of one <see cref="NpgsqlDataSource"/>. Behaves as the SQLite store does; what differs is how concurrency is
/// handled: row locks instead of one writer, an advisory lock for the migration, <c>SKIP LOCKED</c> for cleanup. Its
/// deletes and renewals notify other servers in their own transaction (<see cref="PostgreSqlChangeFeed"/>).
/// Written against the core library's public API only.
/// </summary>
internal sealed partial class PostgreSqlSessionStore : IServerSideSessionStore, IAsyncDisposable, IDisposable
{
    /// <summary>SQLSTATE undefined_table.</summary>
    private const string UndefinedTable = "42P01";

    private readonly NpgsqlDataSource _dataSource;
    private readonly SessionSql _sql;
    private readonly PostgreSqlSessionSql _pg;
    private readonly SessionExpiry _expiry;
    private readonly ILogger<PostgreSqlSessionStore> _logger;
    private readonly PostgreSqlWriteQueue _writes;
    private readonly PostgreSqlLoadQueue _loads;

    /// <param name="dataSource">Loads, listings, the cleaner and the migration.</param>
    /// <param name="options">The table name and the timeouts (<see cref="SessionStoreSettings"/>).</param>
    /// <param name="timeProvider">The clock of expiry.</param>
    /// <param name="logger">Where the migration and failed batches are logged.</param>
    /// <param name="writerDataSource">The group-commit writer's connection; <paramref name="dataSource"/> when null.</param>
    /// <param name="drainTimeout">How long the writer and the load queue run what is queued when the store stops (<see cref="Queues.BatchLoop.DrainTimeout"/> when null).</param>
    public PostgreSqlSessionStore(NpgsqlDataSource dataSource, IOptions<ServerSideSessionOptions> options, TimeProvider timeProvider, ILogger<PostgreSqlSessionStore> logger, NpgsqlDataSource? writerDataSource = null, TimeSpan? drainTimeout = null)
        : this(dataSource, SessionStoreSettings.From((options ?? throw new ArgumentNullException(nameof(options))).Value), timeProvider, logger, writerDataSource, drainTimeout)
    {
    }

    /// <summary>The store over <paramref name="settings"/>, what it uses of the options.</summary>
    internal PostgreSqlSessionStore(NpgsqlDataSource dataSource, SessionStoreSettings settings, TimeProvider timeProvider, ILogger<PostgreSqlSessionStore> logger, NpgsqlDataSource? writerDataSource = null, TimeSpan? drainTimeout = null)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(settings);
        _dataSource = dataSource;
        _sql = new SessionSql(PostgreSqlDialect.Instance, settings.TableName);
        _pg = new PostgreSqlSessionSql(_sql);
        _expiry = settings.Expiry(timeProvider);
        _logger = logger;
        _writes = new PostgreSqlWriteQueue(writerDataSource ?? dataSource, logger, _pg.UpdateMany, _pg.InsertMany, _pg.LockKeys, _pg.LockedKeys, drainTimeout);
        _loads = new PostgreSqlLoadQueue(dataSource, _sql.Table, drainTimeout);
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
    public async Task<StoredSession?> LoadAsync(byte[] key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        StoredSession? row;
        try
        {
            // Read together with the other loads waiting at this moment (one statement for all of them).
            row = await _loads.LoadAsync(key, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (ex.SqlState == UndefinedTable)
        {
            throw SessionTableSchema.MissingTable(_sql.TableName, ex);
        }

        // An expired row stays for the cleaner, which raises its end before deleting it.
        return row is null || row.ExpiresAt?.ToUnixTimeSeconds() < _expiry.UnixNow() ? null : row;
    }

    /// <inheritdoc/>
    public async Task<StoredSession> CreateAsync(NewSession session, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        var expiry = _expiry.Parameters();
        var expiresAt = session.ExpiresAt?.ToUnixTimeSeconds() ?? expiry.DefaultExpiresAt(expiry.Now);
        // One set of values: an array element of the batch's grouped insert, or its own statement when it cannot be grouped.
        var insert = new GroupedInsert(session, expiry.Now, expiresAt);
        if (SessionUserLimits.IsCapped(session))
        {
            var displaced = await SignInCappedAsync(session, oldKey: null, expectedVersion: 0, () => insert.ToCommand(_sql.Insert), cancellationToken).ConfigureAwait(false);
            return session.AsCreated(expiry.Now, expiresAt) with { Displaced = displaced.Displaced };
        }

        // A sign-in's row (with its sign-in columns) is its own statement; anonymous rows are grouped (InsertMany).
        await WriteAsync(new PostgreSqlWrite<bool>(
            session.Key,
            () => insert.ToCommand(_sql.Insert),
            static (_, _, _) => ValueTask.FromResult(true),
            cancellationToken,
            insert: session.SignIn is null ? insert : null)).ConfigureAwait(false);
        return session.AsCreated(expiry.Now, expiresAt);
    }

    /// <inheritdoc/>
    public Task<SessionUpdateResult> UpdateAsync(byte[] key, byte[] data, long expectedVersion, DateTimeOffset? expiresAt = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(data);
        var expiry = _expiry.Parameters();
        // One set of values: an array element of the batch's grouped update, or its own statement when it cannot be grouped.
        var update = new GroupedUpdate(data, expectedVersion, expiresAt?.ToUnixTimeSeconds(), expiry.Now, expiry.IdleSeconds, expiry.AbsoluteSeconds);
        return WriteAsync(new PostgreSqlWrite<SessionUpdateResult>(
            key,
            () => update.ToCommand(_sql.Update, key),
            (rows, connection, token) => ResultAsync(connection, key, rows, expectedVersion, expiry.Now, token),
            cancellationToken,
            update));
    }

    /// <inheritdoc/>
    public Task<bool> TouchAsync(byte[] key, DateTimeOffset? expiresAt = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        var expiry = _expiry.Parameters();
        return WriteAsync(new PostgreSqlWrite<bool>(
            key,
            () => Command(
                _sql.Touch,
                Bytes("Id", key),
                Int64("ExpiresAt", expiresAt?.ToUnixTimeSeconds()),
                Int64("Now", expiry.Now),
                Int64("IdleSeconds", expiry.IdleSeconds),
                Int64("AbsoluteSeconds", expiry.AbsoluteSeconds)),
            static (rows, _, _) => ValueTask.FromResult(rows > 0),
            cancellationToken));
    }

    /// <inheritdoc/>
    public Task<SessionUpdateResult> RenewAsync(byte[] oldKey, long expectedVersion, NewSession renewed, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(oldKey);
        ArgumentNullException.ThrowIfNull(renewed);
        var expiry = _expiry.Parameters();
        if (SessionUserLimits.IsCapped(renewed))
        {
            return SignInCappedAsync(renewed, oldKey, expectedVersion, () => RenewCommand(oldKey, expectedVersion, renewed, expiry), cancellationToken);
        }

        return WriteAsync(new PostgreSqlWrite<SessionUpdateResult>(
            oldKey,
            () => RenewCommand(oldKey, expectedVersion, renewed, expiry),
            (rows, connection, token) => ResultAsync(connection, oldKey, rows, expectedVersion, expiry.Now, token),
            cancellationToken));
    }

    /// <summary>The renewal statement (<see cref="PostgreSqlSessionSql.Renew"/>) with its parameters.</summary>
    private NpgsqlBatchCommand RenewCommand(byte[] oldKey, long expectedVersion, NewSession renewed, ExpiryParameters expiry)
    {
        var signIn = SessionSql.SignInParameters(renewed.SignIn);
        return Command(
                _pg.Renew,
                Bytes("OldId", oldKey),
                Int64("ExpectedVersion", expectedVersion),
                Bytes("NewId", renewed.Key),
                Text("UserId", renewed.UserId),
                Bytes("Data", renewed.Data),
                Text("Ip", renewed.IpAddress),
                Text("UserAgent", renewed.UserAgent),
                Int64("ExpiresAt", renewed.ExpiresAt?.ToUnixTimeSeconds()),
                Int64("Now", expiry.Now),
                Int64("IdleSeconds", expiry.IdleSeconds),
                Int64("AbsoluteSeconds", expiry.AbsoluteSeconds),
                Int64("SignedInAt", signIn.SignedInAt),
                Text("IdpIssuer", signIn.IdpIssuer),
                Text("IdpSid", signIn.IdpSid),
                Text("IdpSubject", signIn.IdpSubject),
                Text("CredentialStamp", signIn.CredentialStamp),
                Text("Notice", PostgreSqlChangeNotice.Renewed(oldKey, renewed.Key, renewed.UserId)));
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
                var rows = await connection.QueryAsync<SessionInfoRow>(SqlStatement.Of(
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
                return await connection.QueryAsync(SqlStatement.Of(
                    _pg.DeleteByUserBatch, new { UserId = userId, ExceptId = exceptKey, Limit = maxRows }, cancellationToken: token), SessionLifetimeRow.Read).ConfigureAwait(false);
            },
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task<SessionLifetime?> DeleteAsync(byte[] key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        return RunAsync(
            async (connection, token) => await connection.QuerySingleOrDefaultAsync(SqlStatement.Of(
                _pg.DeleteReturning, new { Id = key, Notice = PostgreSqlChangeNotice.Ended(key) }, cancellationToken: token), SessionLifetimeRow.Read).ConfigureAwait(false),
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<SessionLifetime>> ListExpiredAsync(SessionLifetime? after, int maxRows, CancellationToken cancellationToken = default)
    {
        var parameters = SessionSql.ListExpiredParameters(after, maxRows, _expiry.UnixNow());
        return RunAsync<IReadOnlyList<SessionLifetime>>(
            async (connection, token) =>
            {
                return await connection.QueryAsync(SqlStatement.Of(_sql.ListExpired, parameters, cancellationToken: token), SessionLifetimeRow.Read).ConfigureAwait(false);
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
                var deleted = await connection.QueryAsync<byte[]>(SqlStatement.Of(
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

    /// <summary>Runs <paramref name="write"/> in the next group commit; a missing table becomes the error that names the migration.</summary>
    private async Task<T> WriteAsync<T>(PostgreSqlWrite<T> write)
    {
        try
        {
            return await _writes.WriteAsync(write).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (ex.SqlState == UndefinedTable)
        {
            throw SessionTableSchema.MissingTable(_sql.TableName, ex);
        }
    }

    /// <summary>
    /// Committed when the statement changed the row: the update and the renewal both write version
    /// <paramref name="expectedVersion"/> + 1. Otherwise the row is live with another version (conflict) or gone.
    /// </summary>
    private async ValueTask<SessionUpdateResult> ResultAsync(NpgsqlConnection connection, byte[] key, int rows, long expectedVersion, long now, CancellationToken cancellationToken)
    {
        if (rows > 0)
        {
            return new SessionUpdateResult(SessionUpdateStatus.Committed, expectedVersion + 1);
        }

        var live = await connection.ExecuteScalarAsync<long?>(SqlStatement.Of(
            _sql.SelectLiveVersion, new { Id = key, Now = now }, cancellationToken: cancellationToken)).ConfigureAwait(false);
        return new SessionUpdateResult(live is null ? SessionUpdateStatus.NotFound : SessionUpdateStatus.Conflict, 0);
    }

    public async ValueTask DisposeAsync()
    {
        await _loads.DisposeAsync().ConfigureAwait(false);
        await _writes.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>For a container disposed synchronously: no more loads or writes are taken; those queued still run, and the queues then end by themselves.</summary>
    public void Dispose()
    {
        _loads.Complete();
        _writes.Complete();
    }
}
