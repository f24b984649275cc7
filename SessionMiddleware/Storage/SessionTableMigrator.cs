using System.Data.Common;
using Dapper;

namespace SessionMiddleware.Storage;

/// <summary>
/// The one migration routine of every SQL store: in one transaction, after the dialect's lock, it records the schema
/// version, checks an existing table's shape and creates whatever is missing. It never alters or drops anything.
/// For store authors.
/// </summary>
public static class SessionTableMigrator
{
    /// <summary>
    /// Creates the session table, its indexes and its schema record when missing; checks them when present.
    /// Safe to run from several processes at once (they take turns through the transaction and the dialect's lock).
    /// </summary>
    /// <param name="connection">An open connection; the routine runs its own transaction on it.</param>
    /// <param name="sql">The statements of the store's table.</param>
    /// <param name="unixNow">"Now" in Unix seconds, recorded as the migration time.</param>
    /// <param name="cancellationToken">Cancels the migration.</param>
    /// <returns><see langword="true"/> when the table was created, <see langword="false"/> when it existed.</returns>
    /// <exception cref="SessionStoreSchemaException">A table of that name exists with another shape, or a newer version of this library recorded it.</exception>
    public static async Task<bool> MigrateAsync(DbConnection connection, SessionSql sql, long unixNow, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(sql);
        var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var transactionScope = transaction.ConfigureAwait(false);
        await sql.Dialect.LockMigrationAsync(connection, transaction, sql.TableName, cancellationToken).ConfigureAwait(false);

        await connection.ExecuteAsync(new CommandDefinition(sql.CreateSchemaTable, transaction: transaction, cancellationToken: cancellationToken)).ConfigureAwait(false);
        var recorded = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
            sql.SelectSchemaVersion, new { sql.TableName }, transaction, cancellationToken: cancellationToken)).ConfigureAwait(false);
        if (recorded > SessionTableSchema.Version)
        {
            throw SessionTableSchema.NewerSchema(sql.TableName, recorded.Value);
        }

        var found = await ColumnsAsync(connection, sql, transaction, cancellationToken).ConfigureAwait(false);
        var expected = sql.Dialect.Columns();
        if (found.Count > 0 && !SessionTableSchema.HasExpectedShape(found, expected))
        {
            throw SessionTableSchema.WrongShape(sql.TableName, expected, found);
        }

        await connection.ExecuteAsync(new CommandDefinition(sql.CreateTable, transaction: transaction, cancellationToken: cancellationToken)).ConfigureAwait(false);
        await connection.ExecuteAsync(new CommandDefinition(
            sql.UpsertSchemaVersion,
            new { sql.TableName, Version = SessionTableSchema.Version, Now = unixNow },
            transaction,
            cancellationToken: cancellationToken)).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return found.Count == 0;
    }

    /// <summary>
    /// Whether the session table exists: a store calls it after a database error that may mean "no such table"
    /// (where the driver's error code alone does not say so) before raising <see cref="SessionTableSchema.MissingTable"/>.
    /// </summary>
    /// <param name="connection">An open connection.</param>
    /// <param name="sql">The statements of the store's table.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns><see langword="true"/> when the catalog lists the table.</returns>
    public static async Task<bool> TableExistsAsync(DbConnection connection, SessionSql sql, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(sql);
        return (await ColumnsAsync(connection, sql, transaction: null, cancellationToken).ConfigureAwait(false)).Count > 0;
    }

    private static async Task<List<CatalogColumn>> ColumnsAsync(DbConnection connection, SessionSql sql, DbTransaction? transaction, CancellationToken cancellationToken) =>
        (await connection.QueryAsync<CatalogColumn>(new CommandDefinition(
            sql.Dialect.SelectColumns, new { sql.TableName }, transaction, cancellationToken: cancellationToken)).ConfigureAwait(false)).AsList();
}
