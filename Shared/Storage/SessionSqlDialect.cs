using System.Data.Common;

namespace SessionMiddleware.Storage;

/// <summary>
/// What a SQL database's session store says about its dialect, so that <see cref="SessionSql"/> writes the statements
/// that are the same everywhere once, and <see cref="SessionTableMigrator"/> runs one migration routine for every
/// store. A dialect holds only what differs: type names, the catalog query, how concurrent migrations take turns.
/// </summary>
internal abstract class SessionSqlDialect
{
    /// <summary>The type of binary columns (the key and the data), as <see cref="SelectColumns"/> reports it.</summary>
    public abstract string BinaryType { get; }

    /// <summary>The type of text columns (user, IP address, User-Agent), as <see cref="SelectColumns"/> reports it.</summary>
    public abstract string TextType { get; }

    /// <summary>The type of the 64-bit integer columns (Unix-second timestamps, the version), as <see cref="SelectColumns"/> reports it.</summary>
    public abstract string Int64Type { get; }

    /// <summary>The type of the schema version in <see cref="SessionTableSchema.VersionTable"/>.</summary>
    public abstract string Int32Type { get; }

    /// <summary>
    /// The catalog query: one row per column of the table named by the parameter <c>@TableName</c>, in column order,
    /// aliased <c>Name</c>, <c>Type</c>, <c>NotNullFlag</c> (non-zero for NOT NULL) and <c>Pk</c> (position in the
    /// primary key, 0 when not in it); no rows when the table does not exist.
    /// </summary>
    public abstract string SelectColumns { get; }

    /// <summary>
    /// The catalog query of indexes: one row per index on the table named by the parameter <c>@TableName</c>, its name
    /// (unquoted) in the first column; no rows when the table does not exist. It must take no lock on the table.
    /// <see cref="SessionTableMigrator.MigrateAsync"/> reads it, with <see cref="SelectColumns"/> and the schema record,
    /// before it takes any lock: when nothing is missing it returns without running a statement that locks the table
    /// (in PostgreSQL even <c>CREATE INDEX IF NOT EXISTS</c> of an index that exists waits for every open write
    /// transaction on the table, and every later write waits behind it). <see langword="null"/> (the default): the
    /// migration cannot tell, and always takes its lock and runs its <c>CREATE … IF NOT EXISTS</c> statements.
    /// </summary>
    public virtual string? SelectIndexNames => null;

    /// <summary>
    /// The catalog query of triggers: one row per trigger on the table named by the parameter <c>@TableName</c>, its
    /// name (unquoted) in the first column. It must take no lock on the table. <see cref="SessionTableMigrator.MigrateAsync"/>
    /// reads it with <see cref="SelectIndexNames"/> to tell whether the triggers of <see cref="CreateExpiryTriggers"/>
    /// are missing. <see langword="null"/> (the default) when the dialect has no such triggers.
    /// </summary>
    public virtual string? SelectTriggerNames => null;

    /// <summary>
    /// The names of the triggers <see cref="CreateExpiryTriggers"/> creates on a session table, unquoted; none by default.
    /// </summary>
    /// <param name="tableName">The session table's name.</param>
    /// <returns>The trigger names.</returns>
    public virtual IReadOnlyList<string> ExpiryTriggerNames(string tableName) => [];

    /// <summary>
    /// Statements that create, when missing, the triggers that keep <c>expires_at</c> right for rows written by a
    /// server of schema version 1 (which knows no <c>expires_at</c>) while it runs beside upgraded ones: a row inserted
    /// with <c>expires_at</c> 0 gets last access + idle timeout, capped by creation + absolute timeout, as the migration
    /// derives the rows it upgrades; an update that moves <c>last_access</c> and leaves <c>expires_at</c> at the old
    /// last access + idle timeout (a schema-1 touch or write) gets the same derivation at the new last access. The
    /// timeouts are those of the migrating process, written into the trigger as constants; writes of this library
    /// always set <c>expires_at</c> and are left as they are. <see langword="null"/> (the default): no triggers, and a
    /// schema-1 server must not write to the table once it is migrated.
    /// </summary>
    /// <param name="tableName">The session table's name (it has passed <see cref="SessionTableSchema.IsValidTableName"/>).</param>
    /// <param name="idleSeconds">The idle timeout, in seconds.</param>
    /// <param name="absoluteSeconds">The absolute timeout, in seconds (a value past any real date without one).</param>
    /// <returns>The statements, or <see langword="null"/>.</returns>
    public virtual string? CreateExpiryTriggers(string tableName, long idleSeconds, long absoluteSeconds) => null;

    /// <summary>Written after the session table's closing parenthesis (for example <c> WITHOUT ROWID</c>); empty by default.</summary>
    public virtual string TableOptions => "";

    /// <summary>
    /// The name of the table of recent ends and renewals that the dialect's store writes beside the session table, for
    /// other processes on the same database to read (<see cref="ISessionChangeFeed"/>), or <see langword="null"/> when
    /// the database tells them otherwise (PostgreSQL: <c>NOTIFY</c>).
    /// </summary>
    /// <param name="tableName">The session table's name.</param>
    /// <returns>The changes table's name, or <see langword="null"/>.</returns>
    public virtual string? ChangesTableName(string tableName) => null;

    /// <summary>Quotes an identifier that has already passed <see cref="SessionTableSchema.IsValidTableName"/>.</summary>
    /// <param name="identifier">The identifier.</param>
    /// <returns>The identifier in double quotes.</returns>
    public virtual string Quote(string identifier)
    {
        ArgumentNullException.ThrowIfNull(identifier);
        return "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
    }

    /// <summary>The name of the index of the session table on one column; <c>ix_{table}_{column}</c> by default.</summary>
    /// <param name="tableName">The session table's name.</param>
    /// <param name="column">The indexed column.</param>
    /// <returns>The index's name, unquoted.</returns>
    public virtual string IndexName(string tableName, string column) => $"ix_{tableName}_{column}";

    /// <summary>
    /// Called first inside the migration's transaction: makes migrations of the same table from several processes
    /// take turns (for example with an advisory lock). Does nothing by default, for databases whose transaction
    /// already serialises writers from its start.
    /// </summary>
    /// <param name="connection">The migration's connection.</param>
    /// <param name="transaction">The migration's transaction.</param>
    /// <param name="tableName">The session table's name.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when this migration may go on.</returns>
    public virtual Task LockMigrationAsync(DbConnection connection, DbTransaction transaction, string tableName, CancellationToken cancellationToken) =>
        Task.CompletedTask;

    /// <summary>The session table's columns in order, with this dialect's types (what the migration creates and expects).</summary>
    /// <param name="schemaVersion">The schema version: <see cref="SessionTableSchema.Version"/>, or an earlier one the migration upgrades.</param>
    /// <returns>One <see cref="SessionColumn"/> per column of that version.</returns>
    public IReadOnlyList<SessionColumn> Columns(int schemaVersion = SessionTableSchema.Version)
    {
        List<SessionColumn> columns =
        [
            new("id", BinaryType),
            new("user_id", TextType),
            new("data", BinaryType),
            new("created_at", Int64Type),
            new("last_access", Int64Type),
            new("version", Int64Type),
            new("ip", TextType),
            new("user_agent", TextType),
        ];
        if (schemaVersion >= 2)
        {
            columns.Add(new("expires_at", Int64Type));
        }

        if (schemaVersion >= 4)
        {
            columns.Add(new("signed_in_at", Int64Type));
            columns.Add(new("idp_issuer", TextType));
            columns.Add(new("idp_sid", TextType));
            columns.Add(new("idp_subject", TextType));
            columns.Add(new("credential_stamp", TextType));
        }

        return columns;
    }
}
