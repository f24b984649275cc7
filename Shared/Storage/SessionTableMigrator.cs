using System.Data.Common;

namespace SessionMiddleware.Storage;

/// <summary>
/// The one migration routine of every SQL store: it first reads the catalog, locking nothing, and returns when the
/// table is complete and up to date; otherwise, in one transaction after the dialect's lock, it checks again, records
/// the schema version, checks an existing table's shape and creates whatever is missing. It never alters or drops
/// anything.
/// </summary>
internal static class SessionTableMigrator
{
    /// <summary>
    /// Creates the session table, its indexes and its schema record when missing; upgrades a table of an earlier
    /// schema version in place, keeping every row; checks an up-to-date one. Safe to run from several processes at
    /// once (they take turns through the transaction and the dialect's lock). A node that starts beside running ones
    /// finds the table up to date without taking a lock that makes session reads or writes wait
    /// (<see cref="SessionSqlDialect.SelectIndexNames"/>).
    /// </summary>
    /// <param name="connection">An open connection; the routine runs its own transaction on it.</param>
    /// <param name="sql">The statements of the store's table.</param>
    /// <param name="expiry">"Now" (recorded as the migration time) and the timeouts that give upgraded rows their expiry.</param>
    /// <param name="cancellationToken">Cancels the migration.</param>
    /// <returns>Whether the table was created, or upgraded from which version.</returns>
    /// <exception cref="SessionStoreSchemaException">A table of that name exists with another shape, or a newer version of this library recorded it.</exception>
    public static async Task<SessionMigrationResult> MigrateAsync(DbConnection connection, SessionSql sql, ExpiryParameters expiry, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(sql);
        if (await IsUpToDateAsync(connection, sql, cancellationToken).ConfigureAwait(false))
        {
            return new SessionMigrationResult(Created: false, UpgradedFromVersion: null);
        }

        // Something is missing, old or wrong: under the lock everything is checked again (another node may have just
        // done it) and only what is missing is created.
        var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var transactionScope = transaction.ConfigureAwait(false);
        await sql.Dialect.LockMigrationAsync(connection, transaction, sql.TableName, cancellationToken).ConfigureAwait(false);

        await connection.ExecuteAsync(SqlStatement.Of(sql.CreateSchemaTable, transaction: transaction, cancellationToken: cancellationToken)).ConfigureAwait(false);
        var recorded = await connection.ExecuteScalarAsync<long?>(SqlStatement.Of(
            sql.SelectSchemaVersion, new { sql.TableName }, transaction, cancellationToken: cancellationToken)).ConfigureAwait(false);
        ThrowIfNewer(sql, recorded);
        var found = await ColumnsAsync(connection, sql.TableName, sql, transaction, cancellationToken).ConfigureAwait(false);
        var result = new SessionMigrationResult(Created: found.Count == 0, UpgradedFromVersion: null);
        if (found.Count > 0)
        {
            // An older table is upgraded in place; any other shape is left untouched.
            var upgradedFrom = await UpgradeAsync(connection, transaction, sql, expiry, recorded, found, cancellationToken).ConfigureAwait(false);
            result = result with { UpgradedFromVersion = upgradedFrom };
        }

        await CreateMissingAsync(connection, transaction, sql, expiry, cancellationToken).ConfigureAwait(false);
        await connection.ExecuteAsync(SqlStatement.Of(
            sql.UpsertSchemaVersion,
            new { sql.TableName, Version = SessionTableSchema.Version, expiry.Now },
            transaction,
            cancellationToken: cancellationToken)).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return result;
    }

    /// <summary>Creates what is missing of the table, its indexes, the dialect's changes table and expiry triggers, in the migration's transaction.</summary>
    /// <summary>
    /// Upgrades a table of an older shape in place: schema 1 gets <c>expires_at</c> (every row rewritten), schema 1, 2 and
    /// 3 get the sign-in columns of schema 4 (nullable: no row rewritten). Returns the version upgraded from (2 for a
    /// table of schema 2 or 3, which have the same columns), or null when the table has the current shape.
    /// </summary>
    /// <exception cref="SessionStoreSchemaException">The table has another shape.</exception>
    private static async Task<int?> UpgradeAsync(
        DbConnection connection, DbTransaction transaction, SessionSql sql, ExpiryParameters expiry, long? recorded, List<CatalogColumn> found, CancellationToken cancellationToken)
    {
        if (SessionTableSchema.HasExpectedShape(found, sql.Dialect.Columns()))
        {
            return null;
        }

        int from;
        if (recorded is null or 1 && SessionTableSchema.HasExpectedShape(found, sql.Dialect.Columns(1)))
        {
            // Rewrites every row: minutes on millions of rows, past a driver's default command timeout (Npgsql's
            // 30 s), which would roll the upgrade back on every start. It runs until done or cancelled.
            await connection.ExecuteAsync(SqlStatement.Of(
                sql.AddExpiresAt, new { expiry.IdleSeconds, expiry.AbsoluteSeconds }, transaction, commandTimeout: NoTimeout, cancellationToken: cancellationToken)).ConfigureAwait(false);
            from = 1;
        }
        else if (recorded is null or 2 or 3 && SessionTableSchema.HasExpectedShape(found, sql.Dialect.Columns(3)))
        {
            from = (int)(recorded ?? 2);
        }
        else
        {
            ThrowIfWrongShape(sql, found);
            return null;
        }

        await connection.ExecuteAsync(SqlStatement.Of(sql.AddSignInColumns, transaction: transaction, cancellationToken: cancellationToken)).ConfigureAwait(false);
        return from;
    }

    private static async Task CreateMissingAsync(DbConnection connection, DbTransaction transaction, SessionSql sql, ExpiryParameters expiry, CancellationToken cancellationToken)
    {
        // Builds the expires_at index over every row of an upgraded table: no timeout either.
        await connection.ExecuteAsync(SqlStatement.Of(sql.CreateTable, transaction: transaction, commandTimeout: NoTimeout, cancellationToken: cancellationToken)).ConfigureAwait(false);

        if (sql.CreateChangesTable is { } createChanges)
        {
            await connection.ExecuteAsync(SqlStatement.Of(createChanges, transaction: transaction, cancellationToken: cancellationToken)).ConfigureAwait(false);
        }

        // In the same transaction as AddExpiresAt: no schema-1 write lands between the column and its triggers.
        if (sql.Dialect.CreateExpiryTriggers(sql.TableName, expiry.IdleSeconds, expiry.AbsoluteSeconds) is { } createTriggers)
        {
            await connection.ExecuteAsync(SqlStatement.Of(createTriggers, transaction: transaction, cancellationToken: cancellationToken)).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Whether the session table exists: a store calls it after a database error that may mean "no such table"
    /// (where the driver's error code alone does not say so) before raising <see cref="SessionTableSchema.MissingTable(string, Exception)"/>.
    /// </summary>
    /// <param name="connection">An open connection.</param>
    /// <param name="sql">The statements of the store's table.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns><see langword="true"/> when the catalog lists the table.</returns>
    public static async Task<bool> TableExistsAsync(DbConnection connection, SessionSql sql, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(sql);
        return (await ColumnsAsync(connection, sql.TableName, sql, transaction: null, cancellationToken).ConfigureAwait(false)).Count > 0;
    }

    /// <summary>
    /// Checks, without changing anything, that the session table is ready for this version of the library: it exists,
    /// its schema version is the one <see cref="MigrateAsync"/> records, and it has the shape
    /// <see cref="MigrateAsync"/> creates. A store runs it at startup, so that an app whose table was never migrated
    /// fails there rather than at its first request.
    /// </summary>
    /// <param name="connection">An open connection.</param>
    /// <param name="sql">The statements of the store's table.</param>
    /// <param name="cancellationToken">Cancels the check.</param>
    /// <returns>A task that completes when the table is ready.</returns>
    /// <exception cref="InvalidOperationException">The table does not exist (the message names the migration call).</exception>
    /// <exception cref="SessionStoreSchemaException">The table has another shape, or its recorded schema version is older or newer than this library's.</exception>
    public static async Task CheckAsync(DbConnection connection, SessionSql sql, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(sql);
        var found = await ColumnsAsync(connection, sql.TableName, sql, transaction: null, cancellationToken).ConfigureAwait(false);
        if (found.Count == 0)
        {
            throw SessionTableSchema.MissingTable(sql.TableName);
        }

        // Read only: the version table is queried only when it exists (the migration creates it).
        var versionTable = await ColumnsAsync(connection, SessionTableSchema.VersionTable, sql, transaction: null, cancellationToken).ConfigureAwait(false);
        var recorded = versionTable.Count == 0
            ? null
            : await connection.ExecuteScalarAsync<long?>(SqlStatement.Of(
                sql.SelectSchemaVersion, new { sql.TableName }, cancellationToken: cancellationToken)).ConfigureAwait(false);
        ThrowIfNewer(sql, recorded);
        if (recorded is { } older && older < SessionTableSchema.Version)
        {
            throw SessionTableSchema.NotMigrated(sql.TableName, older);
        }

        ThrowIfWrongShape(sql, found);
        if (recorded is null)
        {
            throw SessionTableSchema.NotMigrated(sql.TableName, recordedVersion: null);
        }
    }

    /// <summary>
    /// Read only, outside any transaction, from the catalog and the schema record: the table exists at this schema
    /// version with the expected shape, its three indexes and the dialect's expiry triggers. Anything else (including a table of another shape or a
    /// newer version) is left to the locked path, which creates, upgrades or throws.
    /// </summary>
    private static async Task<bool> IsUpToDateAsync(DbConnection connection, SessionSql sql, CancellationToken cancellationToken)
    {
        if (sql.Dialect.SelectIndexNames is not { } selectIndexNames)
        {
            return false;
        }

        var found = await ColumnsAsync(connection, sql.TableName, sql, transaction: null, cancellationToken).ConfigureAwait(false);
        if (found.Count == 0 || !SessionTableSchema.HasExpectedShape(found, sql.Dialect.Columns()))
        {
            return false;
        }

        var versionTable = await ColumnsAsync(connection, SessionTableSchema.VersionTable, sql, transaction: null, cancellationToken).ConfigureAwait(false);
        if (versionTable.Count == 0 ||
            await connection.ExecuteScalarAsync<long?>(SqlStatement.Of(
                sql.SelectSchemaVersion, new { sql.TableName }, cancellationToken: cancellationToken)).ConfigureAwait(false) != SessionTableSchema.Version)
        {
            return false;
        }

        var indexes = (await connection.QueryAsync<string>(SqlStatement.Of(
            selectIndexNames, new { sql.TableName }, cancellationToken: cancellationToken)).ConfigureAwait(false)).ToHashSet(StringComparer.Ordinal);
        if (!SessionSql.IndexedColumns.All(column => indexes.Contains(sql.Dialect.IndexName(sql.TableName, column))))
        {
            return false;
        }

        if (sql.ChangesTableName is { } changes &&
            (await ColumnsAsync(connection, changes, sql, transaction: null, cancellationToken).ConfigureAwait(false)).Count == 0)
        {
            return false;
        }

        var expectedTriggers = sql.Dialect.ExpiryTriggerNames(sql.TableName);
        if (expectedTriggers.Count == 0 || sql.Dialect.SelectTriggerNames is not { } selectTriggerNames)
        {
            return true;
        }

        var triggers = (await connection.QueryAsync<string>(SqlStatement.Of(
            selectTriggerNames, new { sql.TableName }, cancellationToken: cancellationToken)).ConfigureAwait(false)).ToHashSet(StringComparer.Ordinal);
        return expectedTriggers.All(triggers.Contains);
    }

    private const int NoTimeout = 0;

    private static void ThrowIfNewer(SessionSql sql, long? recorded)
    {
        if (recorded > SessionTableSchema.Version)
        {
            throw SessionTableSchema.NewerSchema(sql.TableName, recorded.Value);
        }
    }

    private static void ThrowIfWrongShape(SessionSql sql, List<CatalogColumn> found)
    {
        var expected = sql.Dialect.Columns();
        if (!SessionTableSchema.HasExpectedShape(found, expected))
        {
            throw SessionTableSchema.WrongShape(sql.TableName, expected, found);
        }
    }

    private static async Task<List<CatalogColumn>> ColumnsAsync(DbConnection connection, string tableName, SessionSql sql, DbTransaction? transaction, CancellationToken cancellationToken) =>
        (await connection.QueryAsync<CatalogColumn>(SqlStatement.Of(
            sql.Dialect.SelectColumns, new { TableName = tableName }, transaction, cancellationToken: cancellationToken)).ConfigureAwait(false));
}

/// <summary>What <see cref="SessionTableMigrator.MigrateAsync"/> did.</summary>
/// <param name="Created">The table did not exist and was created.</param>
/// <param name="UpgradedFromVersion">The schema version the table was upgraded from, or <see langword="null"/> when it was not upgraded.</param>
internal readonly record struct SessionMigrationResult(bool Created, int? UpgradedFromVersion);
