using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SessionMiddleware.Logging;

namespace SessionMiddleware.Storage.Sqlite;

/// <summary>
/// The embedded default store: one SQLite file in WAL mode, accessed through Dapper. Reads use pooled
/// Microsoft.Data.Sqlite connections; writes are group-committed by one writer (<see cref="SqliteWriteQueue"/>).
/// </summary>
internal sealed partial class SqliteSessionStore : IServerSideSessionStore, IAsyncDisposable
{
    private readonly string _connectionString;
    private readonly string _connectionPragmas;
    private readonly SessionSql _sql;
    private readonly SqliteSessionSql _sqlite;
    private readonly SessionExpiry _expiry;
    private readonly ILogger<SqliteSessionStore> _logger;

    // SQLite has one writer at a time. Writes of this process go through one queue (group commit) instead of
    // polling in SQLite's busy handler, whose back-off sleeps inflate tail latency; other processes still meet the
    // busy handler at BEGIN IMMEDIATE.
    private readonly SqliteWriteQueue _writes;

    // Loads run on a few held connections with the statement prepared (see SqliteLoadConnections for the figures).
    private readonly SqliteLoadConnections _loads;

    // The writer's insert, update and touch, prepared once per writer connection.
    private readonly SqlitePreparedCommands _prepared = new();

    // The rows loaded, kept while no one else commits (see SqliteRowCache); null when RowCacheSize is 0.
    private readonly SqliteRowCache? _rowCache;

    /// <summary>The row cache, or null when <see cref="ServerSideSessionOptions.RowCacheSize"/> is 0 (for tests).</summary>
    internal SqliteRowCache? RowCache => _rowCache;

    /// <summary>The most bytes of session data the row cache keeps, whatever <see cref="ServerSideSessionOptions.RowCacheSize"/> (<see cref="SqliteStoreSettings.RowCacheMaxBytes"/>).</summary>
    internal const long RowCacheMaxBytes = 64L * 1024 * 1024;

    // Checkpoints run in the background, not inside a request's commit (connections set wal_autocheckpoint = 0).
    private readonly SqliteCheckpointer _checkpointer;

    private static readonly object InitializedMarker = new();
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<SQLitePCL.sqlite3, object> _initializedHandles = new();

    /// <summary>The fewest expired rows for a mass expiry (<see cref="SqliteStoreSettings.MassExpiryMinRows"/>).</summary>
    internal const int DefaultMassExpiryMinRows = 5000;

    private readonly int _massExpiryMinRows;

    /// <summary>How often the WAL is checkpointed in the background (see <see cref="SqliteCheckpointer"/>).</summary>
    internal static readonly TimeSpan DefaultCheckpointInterval = TimeSpan.FromMilliseconds(250);

    // After a checkpoint has let the WAL start over, a WAL file grown larger than this (by a burst) is cut back to it.
    internal const long WalSizeLimitBytes = 64L * 1024 * 1024;

    public SqliteSessionStore(IOptions<ServerSideSessionOptions> options, TimeProvider timeProvider, ILogger<SqliteSessionStore> logger, IWriteBatchObserver? writeBatches = null)
        : this(options, timeProvider, logger, DefaultCheckpointInterval, writeBatches)
    {
    }

    internal SqliteSessionStore(IOptions<ServerSideSessionOptions> options, TimeProvider timeProvider, ILogger<SqliteSessionStore> logger, TimeSpan checkpointInterval, IWriteBatchObserver? writeBatches = null)
        : this(SqliteStoreSettings.From((options ?? throw new ArgumentNullException(nameof(options))).Value), timeProvider, logger, checkpointInterval, writeBatches)
    {
    }

    /// <summary>The store over <paramref name="settings"/>, what it uses of the options.</summary>
    internal SqliteSessionStore(SqliteStoreSettings settings, TimeProvider timeProvider, ILogger<SqliteSessionStore> logger, TimeSpan checkpointInterval, IWriteBatchObserver? writeBatches = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        // Locks are waited for by SQLite's busy handler (busy_timeout below); the provider's own retry loop is
        // bounded by the same time so that a lock held too long surfaces as an error, not a 30-second stall.
        _connectionString = new SqliteConnectionStringBuilder(settings.ConnectionString)
        {
            Pooling = true,
            DefaultTimeout = (int)Math.Max(1, Math.Ceiling(settings.BusyTimeout.TotalSeconds)),
        }.ToString();
        _sql = new SessionSql(SqliteDialect.Instance, settings.Table.TableName);
        _sqlite = new SqliteSessionSql(_sql);
        _massExpiryMinRows = settings.MassExpiryMinRows;
        _logger = logger;
        _expiry = settings.Table.Expiry(timeProvider);
        var busyMs = (long)Math.Min(int.MaxValue, Math.Ceiling(settings.BusyTimeout.TotalMilliseconds));
        _connectionPragmas = string.Create(CultureInfo.InvariantCulture, $"PRAGMA busy_timeout = {busyMs}; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {WalSizeLimitBytes};");
        _rowCache = settings.RowCacheSize > 0 ? new SqliteRowCache(settings.RowCacheSize, settings.RowCacheMaxBytes, OpenUnpooledAsync, logger) { ReadDataVersionOnly = settings.RowCacheReadsDataVersionOnly } : null;
        _writes = new SqliteWriteQueue(OpenAsync, logger, writeBatches is null ? null : writeBatches.WriteBatch) { RowCache = _rowCache };
        _loads = new SqliteLoadConnections(OpenAsync, _sql.Load);
        var dataSource = new SqliteConnectionStringBuilder(_connectionString).DataSource;
        var walPath = string.IsNullOrEmpty(dataSource) || dataSource.StartsWith(':') ? null : Path.GetFullPath(dataSource) + "-wal";
        _checkpointer = new SqliteCheckpointer(OpenUnpooledAsync, _writes, checkpointInterval, busyMs, walPath, logger);
    }

    /// <inheritdoc/>
    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        SqliteDatabasePath.ThrowIfUnusable(_connectionString);
        try
        {
            var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var connectionScope = connection.ConfigureAwait(false);

            // WAL lets readers run beside the one writer and survives process crashes with synchronous=NORMAL. It is a
            // property of the file, set outside a transaction; the migration's transaction (BEGIN IMMEDIATE) then makes
            // processes migrating at once take turns.
            var journalMode = await connection.ExecuteScalarAsync<string>(
                SqlStatement.Of("PRAGMA journal_mode = WAL;", cancellationToken: cancellationToken)).ConfigureAwait(false);
            var result = await SessionTableMigrator.MigrateAsync(connection, _sql, _expiry.Parameters(), cancellationToken).ConfigureAwait(false);
            Log.Migrated(_logger, _sql.TableName, result.Created, result.UpgradedFromVersion, SessionTableSchema.Version, journalMode ?? "unknown");
        }
        catch (SqliteException ex) when (SqliteDatabasePath.Explain(_connectionString, ex) is { } clear)
        {
            throw clear;
        }
    }

    /// <inheritdoc/>
    public async Task CheckSchemaAsync(CancellationToken cancellationToken = default)
    {
        SqliteDatabasePath.ThrowIfUnusable(_connectionString);
        try
        {
            var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var connectionScope = connection.ConfigureAwait(false);
            await SessionTableMigrator.CheckAsync(connection, _sql, cancellationToken).ConfigureAwait(false);
        }
        catch (SqliteException ex) when (SqliteDatabasePath.Explain(_connectionString, ex) is { } clear)
        {
            throw clear;
        }
    }

    /// <inheritdoc/>
    public async Task<StoredSession?> LoadAsync(byte[] key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        try
        {
            var (row, version) = _rowCache is { } cache ? await cache.GetAsync(key, cancellationToken).ConfigureAwait(false) : (null, 0);
            if (row is null)
            {
                row = await _loads.LoadAsync(key, cancellationToken).ConfigureAwait(false);
                if (row is null)
                {
                    return null;
                }

                _rowCache?.Add(key, row, version);
            }

            // An expired row stays for the cleaner, which raises its end before deleting it.
            return row.ExpiresAt < _expiry.UnixNow() ? null : row.ToStoredSession(key);
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode == SqliteGenericError)
        {
            if (await IsTableMissingAsync().ConfigureAwait(false))
            {
                throw SessionTableSchema.MissingTable(_sql.TableName, ex);
            }

            throw;
        }
    }

    /// <inheritdoc/>
    public async Task<StoredSession> CreateAsync(NewSession session, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        var expiry = _expiry.Parameters();
        var expiresAt = session.ExpiresAt?.ToUnixTimeSeconds() ?? expiry.DefaultExpiresAt(expiry.Now);
        var capped = SessionUserLimits.IsCapped(session);
        var displaced = await WriteAsync(
            async (connection, transaction, token) =>
            {
                // A capped sign-in counts and ends in the same transaction as its insert (its own savepoint: a refusal
                // rolls back nothing else); the one writer, under BEGIN IMMEDIATE, serializes it with every other write.
                var overLimit = capped ? await KeysOverLimitAsync(connection, transaction, session, session.Key, expiry.Now, token).ConfigureAwait(false) : [];
                var signIn = SessionSql.SignInParameters(session.SignIn);
                var command = _prepared.Get(
                    connection,
                    transaction,
                    _sql.Insert,
                    ("@Id", session.Key),
                    ("@UserId", session.UserId),
                    ("@Data", session.Data),
                    ("@Now", expiry.Now),
                    ("@Ip", session.IpAddress),
                    ("@UserAgent", session.UserAgent),
                    ("@ExpiresAt", expiresAt),
                    ("@SignedInAt", signIn.SignedInAt),
                    ("@IdpIssuer", signIn.IdpIssuer),
                    ("@IdpSid", signIn.IdpSid),
                    ("@IdpSubject", signIn.IdpSubject),
                    ("@CredentialStamp", signIn.CredentialStamp));
                await command.ExecuteNonQueryAsync(token).ConfigureAwait(false);
                return await EndAsync(connection, transaction, overLimit, token).ConfigureAwait(false);
            },
            singleStatement: !capped,
            committed: ForgetEach,
            cancellationToken).ConfigureAwait(false);
        return session.AsCreated(expiry.Now, expiresAt) with { Displaced = displaced };
    }

    /// <inheritdoc/>
    public Task<SessionUpdateResult> UpdateAsync(byte[] key, byte[] data, long expectedVersion, DateTimeOffset? expiresAt = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(data);
        var expiry = _expiry.Parameters();
        return WriteAsync(
            async (connection, transaction, token) =>
            {
                var command = _prepared.Get(
                    connection,
                    transaction,
                    _sql.Update,
                    ("@Id", key),
                    ("@Data", data),
                    ("@ExpectedVersion", expectedVersion),
                    ("@ExpiresAt", expiresAt?.ToUnixTimeSeconds()),
                    ("@Now", expiry.Now),
                    ("@IdleSeconds", expiry.IdleSeconds),
                    ("@AbsoluteSeconds", expiry.AbsoluteSeconds));
                var version = await command.ExecuteScalarAsync(token).ConfigureAwait(false) is long returned ? returned : (long?)null;
                return version is { } v
                    ? new SessionUpdateResult(SessionUpdateStatus.Committed, v)
                    : await MissedUpdateAsync(connection, transaction, key, expiry.Now, token).ConfigureAwait(false);
            },
            singleStatement: true,
            committed: (cache, result) =>
            {
                // A miss changed nothing: the kept row, if any, is as current as the table's.
                if (result.Status == SessionUpdateStatus.Committed)
                {
                    cache.Updated(key, data, result.Version, expiry, expiresAt?.ToUnixTimeSeconds());
                }
            },
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task<bool> TouchAsync(byte[] key, DateTimeOffset? expiresAt = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        var expiry = _expiry.Parameters();
        return WriteAsync(
            async (connection, transaction, token) =>
            {
                var command = _prepared.Get(
                    connection,
                    transaction,
                    _sql.Touch,
                    ("@Id", key),
                    ("@ExpiresAt", expiresAt?.ToUnixTimeSeconds()),
                    ("@Now", expiry.Now),
                    ("@IdleSeconds", expiry.IdleSeconds),
                    ("@AbsoluteSeconds", expiry.AbsoluteSeconds));
                return await command.ExecuteNonQueryAsync(token).ConfigureAwait(false) > 0;
            },
            singleStatement: true,
            committed: (cache, touched) =>
            {
                if (touched)
                {
                    cache.Touched(key, expiry, expiresAt?.ToUnixTimeSeconds());
                }
            },
            cancellationToken);
    }

    /// <inheritdoc/>
    public Task<SessionUpdateResult> RenewAsync(byte[] oldKey, long expectedVersion, NewSession renewed, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(oldKey);
        ArgumentNullException.ThrowIfNull(renewed);
        var expiry = _expiry.Parameters();
        return WriteAsync(
            async (connection, transaction, token) =>
            {
                // Inside the group transaction (and its own savepoint): the cap, the copy and the delete are one atomic step.
                var overLimit = SessionUserLimits.IsCapped(renewed)
                    ? await KeysOverLimitAsync(connection, transaction, renewed, oldKey, expiry.Now, token).ConfigureAwait(false)
                    : [];
                var version = await connection.ExecuteScalarAsync<long?>(SqlStatement.Of(
                    _sqlite.RenewInsert,
                    SessionSql.RenewParameters(oldKey, expectedVersion, renewed, expiry),
                    transaction,
                    cancellationToken: token)).ConfigureAwait(false);
                if (version is null)
                {
                    return await MissedUpdateAsync(connection, transaction, oldKey, expiry.Now, token).ConfigureAwait(false);
                }

                await connection.ExecuteAsync(SqlStatement.Of(_sql.Delete, new { Id = oldKey }, transaction, cancellationToken: token)).ConfigureAwait(false);
                var displaced = await EndAsync(connection, transaction, overLimit, token).ConfigureAwait(false);
                await connection.ExecuteAsync(SqlStatement.Of(
                    _sqlite.RecordRenewal, new { At = expiry.Now, Id = oldKey, NewId = renewed.Key, renewed.UserId }, transaction, cancellationToken: token)).ConfigureAwait(false);
                await PruneChangesNowAndThenAsync(connection, transaction, 1, token).ConfigureAwait(false);
                return new SessionUpdateResult(SessionUpdateStatus.Committed, version.Value) { Displaced = displaced };
            },
            singleStatement: false,
            committed: (cache, result) =>
            {
                // The row moved to a key no load has asked for yet: the old key is forgotten, the new one loaded when used.
                cache.Forget(oldKey);
                ForgetEach(cache, result.Displaced);
            },
            cancellationToken);
    }

    /// <summary>After an update that matched no row: the row is gone (NotFound) or has another version (Conflict).</summary>
    private async Task<SessionUpdateResult> MissedUpdateAsync(
        SqliteConnection connection, SqliteTransaction transaction, byte[] key, long now, CancellationToken cancellationToken)
    {
        var live = await connection.ExecuteScalarAsync<long?>(SqlStatement.Of(
            _sql.SelectLiveVersion, new { Id = key, Now = now }, transaction, cancellationToken: cancellationToken)).ConfigureAwait(false);
        return new SessionUpdateResult(live is null ? SessionUpdateStatus.NotFound : SessionUpdateStatus.Conflict, 0);
    }

    /// <summary>Stops the write queue after the writes already queued, and closes the held connections.</summary>
    public async ValueTask DisposeAsync()
    {
        // The checkpointer first: its last step runs through the write queue.
        await _checkpointer.DisposeAsync().ConfigureAwait(false);
        await _writes.DisposeAsync().ConfigureAwait(false);
        _loads.Dispose();
        _rowCache?.Dispose();
    }

    /// <summary>Closes the connections held for loads and the writer's (for tests that need the file with no connection open).</summary>
    internal async Task ReleaseIdleConnectionsAsync()
    {
        _loads.Clear();
        _rowCache?.Release();
        await _writes.ReleaseConnectionAsync().ConfigureAwait(false);
    }
}
