namespace SessionMiddleware.Storage;

/// <summary>
/// The statements that are the same text in every SQL dialect, built once for one (validated, quoted) table name.
/// Every value is a parameter; "now" and the expiry cutoffs are parameters from <see cref="SessionExpiry"/>, never
/// the database's clock. A store adds what its dialect does differently (renewal, batched deletes). Shared as source
/// (Shared/Storage, linked into the core, the PostgreSQL package and the tool), not as public API.
/// </summary>
internal sealed partial class SessionSql
{
    /// <summary>The condition of a live row: <c>expires_at &gt;= @Now</c> (a row lives through the second it expires) (<see cref="ExpiryParameters"/>).</summary>
    public const string LiveCondition = "expires_at >= @Now";

    /// <summary>Builds the statements for <paramref name="tableName"/>.</summary>
    /// <param name="dialect">The database's dialect.</param>
    /// <param name="tableName">The session table's name; must pass <see cref="SessionTableSchema.IsValidTableName"/>.</param>
    /// <exception cref="ArgumentException">The table name is not allowed.</exception>
    public SessionSql(SessionSqlDialect dialect, string tableName)
    {
        ArgumentNullException.ThrowIfNull(dialect);
        if (!SessionTableSchema.IsValidTableName(tableName))
        {
            throw new ArgumentException($"Invalid session table name '{tableName}'.", nameof(tableName));
        }

        Dialect = dialect;
        TableName = tableName;
        Table = dialect.Quote(tableName);
        var t = Table;
        var v = dialect.Quote(SessionTableSchema.VersionTable);
        var columns = string.Join(",\n    ", dialect.Columns().Select(c =>
            $"{c.Name} {c.Type} {(c.Name == "id" ? "NOT NULL PRIMARY KEY" : SessionTableSchema.IsNullable(c.Name) ? "NULL" : "NOT NULL")}"));

        CreateSchemaTable =
            $"CREATE TABLE IF NOT EXISTS {v} (table_name {dialect.TextType} NOT NULL PRIMARY KEY, version {dialect.Int32Type} NOT NULL, migrated_at {dialect.Int64Type} NOT NULL);";
        SelectSchemaVersion =
            $"SELECT version FROM {v} WHERE table_name = @TableName;";
        UpsertSchemaVersion =
            $"INSERT INTO {v} AS s (table_name, version, migrated_at) VALUES (@TableName, @Version, @Now) " +
            "ON CONFLICT (table_name) DO UPDATE SET version = excluded.version, migrated_at = excluded.migrated_at WHERE s.version < excluded.version;";
        CreateTable =
            $"CREATE TABLE IF NOT EXISTS {t} (\n    {columns}\n){dialect.TableOptions};\n" +
            $"CREATE INDEX IF NOT EXISTS {dialect.Quote(dialect.IndexName(tableName, "expires_at"))} ON {t} (expires_at);\n" +
            $"CREATE INDEX IF NOT EXISTS {dialect.Quote(dialect.IndexName(tableName, "created_at"))} ON {t} (created_at);\n" +
            $"CREATE INDEX IF NOT EXISTS {dialect.Quote(dialect.IndexName(tableName, "user_id"))} ON {t} (user_id) WHERE user_id IS NOT NULL;\n" +
            $"CREATE INDEX IF NOT EXISTS {dialect.Quote(dialect.IndexName(tableName, "idp_sid"))} ON {t} (idp_issuer, idp_sid) WHERE idp_sid IS NOT NULL;\n" +
            $"CREATE INDEX IF NOT EXISTS {dialect.Quote(dialect.IndexName(tableName, "idp_subject"))} ON {t} (idp_issuer, idp_subject) WHERE idp_subject IS NOT NULL;";

        // Schema 1 -> 2: each row gets the expiry the rules of the migrating process give it.
        AddExpiresAt =
            $"ALTER TABLE {t} ADD COLUMN expires_at {dialect.Int64Type} NOT NULL DEFAULT 0;\n" +
            $"UPDATE {t} SET expires_at = CASE WHEN created_at + @AbsoluteSeconds < last_access + @IdleSeconds THEN created_at + @AbsoluteSeconds ELSE last_access + @IdleSeconds END;";

        // Schema 2 or 3 -> 4: the sign-in columns, all nullable (no row is rewritten); existing rows record no sign-in.
        AddSignInColumns = string.Concat(SessionTableSchema.SignInColumnNames.Select(column =>
            $"ALTER TABLE {t} ADD COLUMN {column} {(column == "signed_in_at" ? dialect.Int64Type : dialect.TextType)} NULL;\n"));

        Load =
            "SELECT data AS Data, version AS Version, user_id AS UserId, created_at AS CreatedAt, last_access AS LastAccess, expires_at AS ExpiresAt, " +
            $"{SignInSelect} FROM {t} WHERE id = @Id;";
        DeleteIfExpired =
            $"DELETE FROM {t} WHERE id = @Id AND NOT ({LiveCondition});";
        Insert =
            $"INSERT INTO {t} (id, user_id, data, created_at, last_access, version, ip, user_agent, expires_at, {SignInColumns}) " +
            $"VALUES (@Id, @UserId, @Data, @Now, @Now, 1, @Ip, @UserAgent, @ExpiresAt, {SignInValues});";
        ListOthersOfUser =
            $"SELECT id FROM {t} WHERE user_id = @UserId AND {LiveCondition} AND id <> @ExceptId ORDER BY last_access DESC, created_at DESC, id DESC;";
        Update =
            $"UPDATE {t} SET data = @Data, version = version + 1, last_access = @Now, expires_at = {NewExpiry("created_at")} " +
            $"WHERE id = @Id AND version = @ExpectedVersion AND {LiveCondition} RETURNING version;";
        SelectLiveVersion =
            $"SELECT version FROM {t} WHERE id = @Id AND {LiveCondition};";
        Touch =
            $"UPDATE {t} SET last_access = @Now, expires_at = {NewExpiry("created_at")} WHERE id = @Id AND {LiveCondition};";
        Delete =
            $"DELETE FROM {t} WHERE id = @Id;";
        DeleteReturning =
            $"DELETE FROM {t} WHERE id = @Id RETURNING {LifetimeColumns};";
        ListByUser =
            "SELECT id AS Id, user_id AS UserId, created_at AS CreatedAt, last_access AS LastAccess, ip AS Ip, user_agent AS UserAgent " +
            $"FROM {t} WHERE user_id = @UserId AND {LiveCondition} ORDER BY last_access DESC, created_at DESC LIMIT @Limit;";

        // Keyset paging over the expires_at index: the range starts at the previous batch's last row, so rows left behind
        // (not deleted, or dead index entries) are not scanned again.
        ListExpired = ListExpiredWhere(t, keyCondition: null);
        DeleteBatch =
            $"DELETE FROM {t} WHERE id IN (SELECT id FROM {t} LIMIT @Limit);";
        ChangesTableName = dialect.ChangesTableName(tableName);
        var c = ChangesTableName is { } changes ? dialect.Quote(changes) : null;

        // Schema 3: the recent ends and renewals, in commit order (AUTOINCREMENT: a sequence number is never used twice,
        // even after the newest rows are pruned).
        CreateChangesTable = c is null ? null :
            $"CREATE TABLE IF NOT EXISTS {c} (seq INTEGER PRIMARY KEY AUTOINCREMENT, at {dialect.Int64Type} NOT NULL, " +
            $"id {dialect.BinaryType} NOT NULL, new_id {dialect.BinaryType} NULL, user_id {dialect.TextType} NULL);";
        DropTable =
            $"DROP TABLE {t};\n" + (c is null ? "" : $"DROP TABLE IF EXISTS {c};\n") + $"DELETE FROM {v} WHERE table_name = @TableName;";
        _statistics =
            $"SELECT count(*) AS Total, coalesce(sum(CASE WHEN {LiveCondition} THEN 1 ELSE 0 END), 0) AS Live, " +
            $"coalesce(sum(CASE WHEN {LiveCondition} AND user_id IS NOT NULL THEN 1 ELSE 0 END), 0) AS LiveBound, " +
            $"min(CASE WHEN {LiveCondition} THEN created_at END) AS OldestCreatedAt, max(CASE WHEN {LiveCondition} THEN created_at END) AS NewestCreatedAt " +
            $"FROM {t};";
    }

    /// <summary>
    /// The expiry a write records: <c>@ExpiresAt</c> when the caller gave one, otherwise now + idle timeout capped by
    /// creation + absolute timeout (<see cref="ExpiryParameters.DefaultExpiresAt"/>).
    /// </summary>
    /// <param name="createdAt">The column (or expression) holding the row's creation time.</param>
    /// <returns>An SQL expression over <c>@ExpiresAt</c>, <c>@Now</c>, <c>@IdleSeconds</c> and <c>@AbsoluteSeconds</c>.</returns>
    public static string NewExpiry(string createdAt) =>
        $"COALESCE(@ExpiresAt, CASE WHEN {createdAt} + @AbsoluteSeconds < @Now + @IdleSeconds THEN {createdAt} + @AbsoluteSeconds ELSE @Now + @IdleSeconds END)";

    private readonly string _statistics;

    /// <summary>The columns of the session table's indexes, each named by <see cref="SessionSqlDialect.IndexName"/> (<c>idp_sid</c> and <c>idp_subject</c> with <c>idp_issuer</c> first).</summary>
    internal static readonly string[] IndexedColumns = ["expires_at", "created_at", "user_id", "idp_sid", "idp_subject"];

    /// <summary>The sign-in columns (schema 4), in the order of <see cref="SignInValues"/>.</summary>
    public const string SignInColumns = "signed_in_at, idp_issuer, idp_sid, idp_subject, credential_stamp";

    /// <summary>The parameters a write binds to <see cref="SignInColumns"/> (<see cref="SignInParameters"/>).</summary>
    public const string SignInValues = "@SignedInAt, @IdpIssuer, @IdpSid, @IdpSubject, @CredentialStamp";

    /// <summary>The sign-in columns as <see cref="SessionRow"/> names them, at the positions of <see cref="LoadColumns"/>.</summary>
    public const string SignInSelect =
        "signed_in_at AS SignedInAt, idp_issuer AS IdpIssuer, idp_sid AS IdpSid, idp_subject AS IdpSubject, credential_stamp AS CredentialStamp";

    /// <summary>The values of <see cref="SignInValues"/> for <paramref name="signIn"/> (all null for none).</summary>
    /// <param name="signIn">The sign-in to record, or <see langword="null"/>.</param>
    /// <returns>The values, in the order of <see cref="SignInColumns"/>.</returns>
    public static (long? SignedInAt, string? IdpIssuer, string? IdpSid, string? IdpSubject, string? CredentialStamp) SignInParameters(SessionSignIn? signIn) =>
        signIn is null ? (null, null, null, null, null) : ((long?)signIn.At.ToUnixTimeSeconds(), signIn.Issuer, signIn.Sid, signIn.Subject, signIn.CredentialStamp);

    /// <summary>The dialect the statements were built for.</summary>
    public SessionSqlDialect Dialect { get; }

    /// <summary>The session table's name, unquoted.</summary>
    public string TableName { get; }

    /// <summary>The session table's name, quoted.</summary>
    public string Table { get; }

    /// <summary>Creates <see cref="SessionTableSchema.VersionTable"/> when missing.</summary>
    public string CreateSchemaTable { get; }

    /// <summary>The version recorded for <c>@TableName</c>, or no row.</summary>
    public string SelectSchemaVersion { get; }

    /// <summary>Records <c>@Version</c> for <c>@TableName</c> at <c>@Now</c>; never lowers a recorded version.</summary>
    public string UpsertSchemaVersion { get; }

    /// <summary>Creates the session table and its three indexes, whichever are missing; never alters or drops anything.</summary>
    public string CreateTable { get; }

    /// <summary>Upgrades a schema-1 table: adds <c>expires_at</c> and sets it for every row from <c>@IdleSeconds</c> and <c>@AbsoluteSeconds</c>.</summary>
    public string AddExpiresAt { get; }

    /// <summary>Upgrades a schema-2 or -3 table to 4: adds the sign-in columns (nullable; no row is rewritten).</summary>
    public string AddSignInColumns { get; }

    /// <summary>
    /// The keys of <c>@UserId</c>'s live rows other than <c>@ExceptId</c>, most recently used first: what a capped sign-in
    /// counts, and from whose end it takes the least recently used.
    /// </summary>
    public string ListOthersOfUser { get; }

    /// <summary>The row under <c>@Id</c>, live or not; its columns are at the positions of <see cref="LoadColumns"/>.</summary>
    public string Load { get; }

    /// <summary>Deletes the row under <c>@Id</c> if it is expired at <c>@Now</c>.</summary>
    public string DeleteIfExpired { get; }

    /// <summary>Inserts a new row at version 1, created and last accessed <c>@Now</c>, expiring at <c>@ExpiresAt</c>.</summary>
    public string Insert { get; }

    /// <summary>Writes <c>@Data</c> and the expiry (<see cref="NewExpiry"/>) if the live row is still at <c>@ExpectedVersion</c>; returns the new version, or no row.</summary>
    public string Update { get; }

    /// <summary>The version of the live row under <c>@Id</c>, or no row: tells a conflict from a row that is gone.</summary>
    public string SelectLiveVersion { get; }

    /// <summary>Sets the live row's last access to <c>@Now</c> and its expiry (<see cref="NewExpiry"/>).</summary>
    public string Touch { get; }

    /// <summary>Deletes the row under <c>@Id</c>.</summary>
    public string Delete { get; }

    /// <summary>Deletes the row under <c>@Id</c> and returns it as <see cref="SessionLifetimeRow"/> reads it (no row when there was none).</summary>
    public string DeleteReturning { get; }

    /// <summary>The live rows of <c>@UserId</c>, most recently used first, at most <c>@Limit</c>, as <see cref="SessionInfoRow"/>.</summary>
    public string ListByUser { get; }

    /// <summary>
    /// At most <c>@Limit</c> rows expired at <c>@Now</c>, as <see cref="SessionLifetimeRow"/> reads them, by expiry then key, after
    /// (<c>@AfterExpiresAt</c>, <c>@AfterId</c>) (<see cref="ListExpiredParameters"/>).
    /// </summary>
    public string ListExpired { get; }

    /// <summary><see cref="ListExpired"/> of table <paramref name="table"/> (quoted), for the rows that also meet <paramref name="keyCondition"/> when given.</summary>
    /// <param name="table">The quoted table name.</param>
    /// <param name="keyCondition">A further condition on the row (a dialect's own), or <see langword="null"/>.</param>
    /// <returns>The statement.</returns>
    public static string ListExpiredWhere(string table, string? keyCondition) =>
        $"SELECT {LifetimeColumns} FROM {table} " +
        "WHERE expires_at < @Now AND expires_at >= @AfterExpiresAt AND (expires_at, id) > (@AfterExpiresAt, @AfterId) " +
        (keyCondition is null ? "" : $"AND {keyCondition} ") +
        "ORDER BY expires_at, id LIMIT @Limit;";

    /// <summary>The columns <see cref="SessionLifetimeRow"/> reads, in its order (aliased).</summary>
    public const string LifetimeColumns = "id AS Key, user_id AS UserId, created_at AS CreatedAt, expires_at AS ExpiresAt";

    /// <summary>The parameters of <see cref="ListExpired"/>: <c>@Now</c>, <c>@AfterExpiresAt</c>, <c>@AfterId</c>, <c>@Limit</c>.</summary>
    /// <param name="after">The last row of the previous batch, or <see langword="null"/> for the first.</param>
    /// <param name="maxRows">The most rows.</param>
    /// <param name="now">"Now", Unix seconds.</param>
    /// <returns>An object whose properties are the parameters (for Dapper and the like).</returns>
    public static ListExpiredArguments ListExpiredParameters(SessionLifetime? after, int maxRows, long now)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxRows);
        return new ListExpiredArguments(now, after?.ExpiresAt.ToUnixTimeSeconds() ?? long.MinValue, after?.Key ?? [], maxRows);
    }

    /// <summary>Deletes at most <c>@Limit</c> rows, live or not (clearing the table in short batches).</summary>
    public string DeleteBatch { get; }

    /// <summary>Drops the session table (and its indexes, and its changes table) and deletes its record in <see cref="SessionTableSchema.VersionTable"/> (<c>@TableName</c>); run both in one transaction.</summary>
    public string DropTable { get; }

    /// <summary>The name of the dialect's table of recent ends and renewals (<see cref="SessionSqlDialect.ChangesTableName"/>), or <see langword="null"/>.</summary>
    public string? ChangesTableName { get; }

    /// <summary>Creates the table of recent ends and renewals when the dialect has one and it is missing; otherwise <see langword="null"/>.</summary>
    public string? CreateChangesTable { get; }

    /// <summary>
    /// The parameters of the statements that write a row: <c>@Now</c>, <c>@IdleSeconds</c>, <c>@AbsoluteSeconds</c>,
    /// <c>@ExpiresAt</c> (null for the default), and for a renewal <c>@OldId</c>, <c>@ExpectedVersion</c>, <c>@NewId</c>,
    /// <c>@UserId</c>, <c>@Data</c>, <c>@Ip</c>, <c>@UserAgent</c>.
    /// </summary>
    /// <param name="oldKey">The current key.</param>
    /// <param name="expectedVersion">The version the caller loaded.</param>
    /// <param name="renewed">The new key, data, user, device and expiry.</param>
    /// <param name="expiry">"Now" and the timeouts.</param>
    /// <returns>An object whose properties are the parameters (for Dapper and the like).</returns>
    public static RenewArguments RenewParameters(byte[] oldKey, long expectedVersion, NewSession renewed, ExpiryParameters expiry)
    {
        ArgumentNullException.ThrowIfNull(renewed);
        var signIn = SignInParameters(renewed.SignIn);
        return new RenewArguments
        {
            OldId = oldKey,
            ExpectedVersion = expectedVersion,
            NewId = renewed.Key,
            UserId = renewed.UserId,
            Data = renewed.Data,
            Ip = renewed.IpAddress,
            UserAgent = renewed.UserAgent,
            ExpiresAt = renewed.ExpiresAt?.ToUnixTimeSeconds(),
            SignedInAt = signIn.SignedInAt,
            IdpIssuer = signIn.IdpIssuer,
            IdpSid = signIn.IdpSid,
            IdpSubject = signIn.IdpSubject,
            CredentialStamp = signIn.CredentialStamp,
            Now = expiry.Now,
            IdleSeconds = expiry.IdleSeconds,
            AbsoluteSeconds = expiry.AbsoluteSeconds,
        };
    }

    /// <summary>The column positions of <see cref="Load"/>, for a store that reads it with a raw data reader.</summary>
    public static class LoadColumns
    {
        /// <summary><c>data</c>.</summary>
        public const int Data = 0;

        /// <summary><c>version</c>.</summary>
        public const int Version = 1;

        /// <summary><c>user_id</c>.</summary>
        public const int UserId = 2;

        /// <summary><c>created_at</c>.</summary>
        public const int CreatedAt = 3;

        /// <summary><c>last_access</c>.</summary>
        public const int LastAccess = 4;

        /// <summary><c>expires_at</c>.</summary>
        public const int ExpiresAt = 5;

        /// <summary><c>signed_in_at</c>; then <c>idp_issuer</c>, <c>idp_sid</c>, <c>idp_subject</c>, <c>credential_stamp</c>.</summary>
        public const int SignedInAt = 6;

        /// <summary>How many columns <see cref="Load"/> returns.</summary>
        public const int Count = SignedInAt + 5;

        /// <summary>Reads the sign-in columns of a <see cref="Load"/> row.</summary>
        /// <param name="reader">A reader positioned on the row.</param>
        /// <param name="row">The row to fill.</param>
        public static void ReadSignIn(System.Data.Common.DbDataReader reader, SessionRow row)
        {
            ArgumentNullException.ThrowIfNull(reader);
            ArgumentNullException.ThrowIfNull(row);
            if (reader.IsDBNull(SignedInAt))
            {
                return;
            }

            row.SignedInAt = reader.GetInt64(SignedInAt);
            row.IdpIssuer = reader.IsDBNull(SignedInAt + 1) ? null : reader.GetString(SignedInAt + 1);
            row.IdpSid = reader.IsDBNull(SignedInAt + 2) ? null : reader.GetString(SignedInAt + 2);
            row.IdpSubject = reader.IsDBNull(SignedInAt + 3) ? null : reader.GetString(SignedInAt + 3);
            row.CredentialStamp = reader.IsDBNull(SignedInAt + 4) ? null : reader.GetString(SignedInAt + 4);
        }
    }
}
