namespace SessionMiddleware.Storage.Sqlite;

/// <summary>
/// The SQLite store's statements beyond the shared <see cref="SessionSql"/>: what SQLite writes differently from
/// other dialects. Every value is a parameter.
/// </summary>
internal sealed class SqliteSessionSql
{
    public SqliteSessionSql(SessionSql common)
    {
        var t = common.Table;
        const string live = SessionSql.LiveCondition;

        // Runs in the writer's transaction together with a Delete of the old key: copy, then delete, atomically.
        RenewInsert =
            $"INSERT INTO {t} (id, user_id, data, created_at, last_access, version, ip, user_agent, expires_at) " +
            $"SELECT @NewId, @UserId, @Data, created_at, @Now, version + 1, @Ip, @UserAgent, {SessionSql.NewExpiry("created_at")} " +
            $"FROM {t} WHERE id = @OldId AND version = @ExpectedVersion AND {live} RETURNING version;";

        // A batch of a user's rows, live or expired, through the user_id index; the caller repeats it until none is left.
        DeleteByUserBatch =
            $"DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE user_id = @UserId AND (@ExceptId IS NULL OR id <> @ExceptId) LIMIT @Limit) " +
            $"RETURNING {SessionSql.LifetimeColumns};";
    }

    public string RenewInsert { get; }

    public string DeleteByUserBatch { get; }
}
