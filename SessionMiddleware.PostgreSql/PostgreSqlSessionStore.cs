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
/// </summary>
internal sealed class PostgreSqlSessionStore : IServerSideSessionStore
{
    /// <summary>SQLSTATE undefined_table.</summary>
    private const string UndefinedTable = "42P01";

    private readonly NpgsqlDataSource _dataSource;
    private readonly PostgreSqlSessionSql _sql;
    private readonly SessionExpiry _expiry;
    private readonly ILogger<PostgreSqlSessionStore> _logger;

    public PostgreSqlSessionStore(NpgsqlDataSource dataSource, IOptions<ServerSideSessionOptions> options, TimeProvider timeProvider, ILogger<PostgreSqlSessionStore> logger)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(options);
        _dataSource = dataSource;
        _sql = new PostgreSqlSessionSql(options.Value.TableName);
        _expiry = new SessionExpiry(options.Value, timeProvider);
        _logger = logger;
    }

    /// <inheritdoc/>
    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var connectionScope = connection.ConfigureAwait(false);
        var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var transactionScope = transaction.ConfigureAwait(false);

        // Several nodes starting at once take turns here; CREATE ... IF NOT EXISTS alone races in PostgreSQL.
        await connection.ExecuteAsync(new CommandDefinition(
            _sql.AcquireMigrationLock, new { LockKey = _sql.MigrationLockKey }, transaction, cancellationToken: cancellationToken)).ConfigureAwait(false);
        await connection.ExecuteAsync(new CommandDefinition(_sql.CreateSchemaTable, transaction: transaction, cancellationToken: cancellationToken)).ConfigureAwait(false);
        var recorded = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
            _sql.SelectSchemaVersion, new { _sql.TableName }, transaction, cancellationToken: cancellationToken)).ConfigureAwait(false);
        if (recorded > SessionTableSchema.Version)
        {
            throw SessionTableSchema.NewerSchema(_sql.TableName, recorded.Value);
        }

        var found = (await connection.QueryAsync<FoundColumn>(new CommandDefinition(
            _sql.SelectColumns, new { _sql.TableName }, transaction, cancellationToken: cancellationToken)).ConfigureAwait(false)).AsList();
        var created = found.Count == 0;
        if (!created && !SessionTableSchema.HasExpectedShape(found, PostgreSqlSessionSql.Columns))
        {
            throw SessionTableSchema.WrongShape(_sql.TableName, PostgreSqlSessionSql.Columns, found);
        }

        // Creates whatever is missing (the table, or only an index); never alters or drops anything.
        await connection.ExecuteAsync(new CommandDefinition(_sql.CreateTable, transaction: transaction, cancellationToken: cancellationToken)).ConfigureAwait(false);
        await connection.ExecuteAsync(new CommandDefinition(
            _sql.UpsertSchemaVersion,
            new { _sql.TableName, Version = SessionTableSchema.Version, Now = _expiry.UnixNow() },
            transaction,
            cancellationToken: cancellationToken)).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);

        Log.MigratedPostgreSql(_logger, _sql.TableName, created, SessionTableSchema.Version, connection.PostgreSqlVersion.ToString());
    }

    /// <inheritdoc/>
    public async Task<StoredSession?> LoadAsync(byte[] key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var connectionScope = connection.ConfigureAwait(false);
            var row = await connection.QuerySingleOrDefaultAsync<SessionRow>(
                new CommandDefinition(_sql.Load, new { Id = key }, cancellationToken: cancellationToken)).ConfigureAwait(false);
            if (row is null)
            {
                return null;
            }

            var cutoffs = _expiry.Cutoffs();
            if (cutoffs.IsExpired(row.LastAccess, row.CreatedAt))
            {
                await connection.ExecuteAsync(new CommandDefinition(
                    _sql.DeleteIfExpired,
                    new { Id = key, cutoffs.IdleCutoff, cutoffs.AbsoluteCutoff },
                    cancellationToken: cancellationToken)).ConfigureAwait(false);
                return null;
            }

            return row.ToStoredSession(key);
        }
        catch (PostgresException ex) when (ex.SqlState == UndefinedTable)
        {
            throw MissingTable(ex);
        }
    }

    /// <inheritdoc/>
    public async Task<StoredSession> CreateAsync(NewSession session, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        var now = _expiry.UnixNow();
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var connectionScope = connection.ConfigureAwait(false);
            await connection.ExecuteAsync(new CommandDefinition(
                _sql.Insert,
                new { Id = session.Key, session.UserId, session.Data, Now = now, Ip = session.IpAddress, session.UserAgent },
                cancellationToken: cancellationToken)).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (ex.SqlState == UndefinedTable)
        {
            throw MissingTable(ex);
        }

        var at = DateTimeOffset.FromUnixTimeSeconds(now);
        return new StoredSession(session.Key, session.Data, 1, session.UserId, at, at);
    }

    /// <inheritdoc/>
    public async Task<SessionUpdateResult> UpdateAsync(byte[] key, byte[] data, long expectedVersion, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(data);
        var (now, idleCutoff, absoluteCutoff) = _expiry.Cutoffs();
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var connectionScope = connection.ConfigureAwait(false);
            var version = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
                _sql.Update,
                new { Id = key, Data = data, Now = now, ExpectedVersion = expectedVersion, IdleCutoff = idleCutoff, AbsoluteCutoff = absoluteCutoff },
                cancellationToken: cancellationToken)).ConfigureAwait(false);
            if (version is { } v)
            {
                return new SessionUpdateResult(SessionUpdateStatus.Committed, v);
            }

            return await NotCommittedAsync(connection, key, idleCutoff, absoluteCutoff, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (ex.SqlState == UndefinedTable)
        {
            throw MissingTable(ex);
        }
    }

    /// <inheritdoc/>
    public async Task<bool> TouchAsync(byte[] key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        var (now, idleCutoff, absoluteCutoff) = _expiry.Cutoffs();
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var connectionScope = connection.ConfigureAwait(false);
            var rows = await connection.ExecuteAsync(new CommandDefinition(
                _sql.Touch,
                new { Id = key, Now = now, IdleCutoff = idleCutoff, AbsoluteCutoff = absoluteCutoff },
                cancellationToken: cancellationToken)).ConfigureAwait(false);
            return rows > 0;
        }
        catch (PostgresException ex) when (ex.SqlState == UndefinedTable)
        {
            throw MissingTable(ex);
        }
    }

    /// <inheritdoc/>
    public async Task<SessionUpdateResult> RenewAsync(byte[] oldKey, long expectedVersion, NewSession renewed, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(oldKey);
        ArgumentNullException.ThrowIfNull(renewed);
        var (now, idleCutoff, absoluteCutoff) = _expiry.Cutoffs();
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var connectionScope = connection.ConfigureAwait(false);
            var version = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
                _sql.Renew,
                new
                {
                    NewId = renewed.Key,
                    renewed.UserId,
                    renewed.Data,
                    Now = now,
                    Ip = renewed.IpAddress,
                    renewed.UserAgent,
                    OldId = oldKey,
                    ExpectedVersion = expectedVersion,
                    IdleCutoff = idleCutoff,
                    AbsoluteCutoff = absoluteCutoff,
                },
                cancellationToken: cancellationToken)).ConfigureAwait(false);
            if (version is { } v)
            {
                return new SessionUpdateResult(SessionUpdateStatus.Committed, v);
            }

            return await NotCommittedAsync(connection, oldKey, idleCutoff, absoluteCutoff, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (ex.SqlState == UndefinedTable)
        {
            throw MissingTable(ex);
        }
    }

    /// <inheritdoc/>
    public async Task<IReadOnlyList<SessionInfo>> ListByUserAsync(string userId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(userId);
        var (_, idleCutoff, absoluteCutoff) = _expiry.Cutoffs();
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var connectionScope = connection.ConfigureAwait(false);
            var rows = await connection.QueryAsync<SessionInfoRow>(new CommandDefinition(
                _sql.ListByUser,
                new { UserId = userId, IdleCutoff = idleCutoff, AbsoluteCutoff = absoluteCutoff },
                cancellationToken: cancellationToken)).ConfigureAwait(false);
            return [.. rows.Select(r => r.ToSessionInfo())];
        }
        catch (PostgresException ex) when (ex.SqlState == UndefinedTable)
        {
            throw MissingTable(ex);
        }
    }

    /// <inheritdoc/>
    public async Task<int> DeleteByUserAsync(string userId, byte[]? exceptKey, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(userId);
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var connectionScope = connection.ConfigureAwait(false);
            // Expired rows not cleaned yet go too, but only live sessions are counted as revoked.
            var (_, idleCutoff, absoluteCutoff) = _expiry.Cutoffs();
            return await connection.ExecuteScalarAsync<int>(new CommandDefinition(
                _sql.DeleteByUser,
                new { UserId = userId, ExceptId = exceptKey, IdleCutoff = idleCutoff, AbsoluteCutoff = absoluteCutoff },
                cancellationToken: cancellationToken)).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (ex.SqlState == UndefinedTable)
        {
            throw MissingTable(ex);
        }
    }

    /// <inheritdoc/>
    public async Task<bool> DeleteAsync(byte[] key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var connectionScope = connection.ConfigureAwait(false);
            var rows = await connection.ExecuteAsync(new CommandDefinition(_sql.Delete, new { Id = key }, cancellationToken: cancellationToken)).ConfigureAwait(false);
            return rows > 0;
        }
        catch (PostgresException ex) when (ex.SqlState == UndefinedTable)
        {
            throw MissingTable(ex);
        }
    }

    /// <inheritdoc/>
    public async Task<int> DeleteExpiredAsync(int maxRows, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxRows);
        var (_, idleCutoff, absoluteCutoff) = _expiry.Cutoffs();
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var connectionScope = connection.ConfigureAwait(false);
            var deleted = await connection.ExecuteAsync(new CommandDefinition(
                _sql.DeleteIdleBatch,
                new { IdleCutoff = idleCutoff, Limit = maxRows },
                cancellationToken: cancellationToken)).ConfigureAwait(false);
            if (deleted < maxRows && _expiry.HasAbsoluteTimeout)
            {
                deleted += await connection.ExecuteAsync(new CommandDefinition(
                    _sql.DeleteTooOldBatch,
                    new { AbsoluteCutoff = absoluteCutoff, Limit = maxRows - deleted },
                    cancellationToken: cancellationToken)).ConfigureAwait(false);
            }

            return deleted;
        }
        catch (PostgresException ex) when (ex.SqlState == UndefinedTable)
        {
            throw MissingTable(ex);
        }
    }

    /// <summary>An update or renewal matched no row: the row is either live with another version (conflict) or gone.</summary>
    private async Task<SessionUpdateResult> NotCommittedAsync(NpgsqlConnection connection, byte[] key, long idleCutoff, long absoluteCutoff, CancellationToken cancellationToken)
    {
        var live = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
            _sql.SelectLiveVersion,
            new { Id = key, IdleCutoff = idleCutoff, AbsoluteCutoff = absoluteCutoff },
            cancellationToken: cancellationToken)).ConfigureAwait(false);
        return new SessionUpdateResult(live is null ? SessionUpdateStatus.NotFound : SessionUpdateStatus.Conflict, 0);
    }

    private InvalidOperationException MissingTable(Exception inner) => SessionTableSchema.MissingTable(_sql.TableName, inner);
}
