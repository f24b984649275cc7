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
            $"INSERT INTO {t} (id, user_id, data, created_at, last_access, version, ip, user_agent, expires_at, {SessionSql.SignInColumns}) " +
            $"SELECT @NewId, @UserId, @Data, created_at, @Now, version + 1, @Ip, @UserAgent, {SessionSql.NewExpiry("created_at")}, {SessionSql.SignInValues} " +
            $"FROM {t} WHERE id = @OldId AND version = @ExpectedVersion AND {live} RETURNING version;";

        // A batch of a user's rows, live or expired, through the user_id index; the caller repeats it until none is left.
        DeleteByUserBatch =
            $"DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE user_id = @UserId AND (@ExceptId IS NULL OR id <> @ExceptId) LIMIT @Limit) " +
            $"RETURNING {SessionSql.LifetimeColumns};";

        // As DeleteByUserBatch, by the recorded sign-in (SessionSql.SignInCondition).
        DeleteBySignInBatch = filter =>
            $"DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE {SessionSql.SignInCondition(filter)} AND (@ExceptId IS NULL OR id <> @ExceptId) LIMIT @Limit) " +
            $"RETURNING {SessionSql.LifetimeColumns};";

        // A mass expiry: the expired rows in key order, walking the table itself (NOT INDEXED: never the expires_at
        // index and a sort), and the counts that tell one (SqliteSessionStore.IsMassExpiryAsync).
        ListExpiredByKey =
            $"SELECT {SessionSql.LifetimeColumns} FROM {t} NOT INDEXED WHERE id > @AfterId AND expires_at < @Now ORDER BY id LIMIT @Limit;";
        CountExpiredUpTo = $"SELECT count(*) FROM (SELECT 1 FROM {t} WHERE expires_at < @Now LIMIT @Limit);";

        // SQLite's columns take any type: a row written by hand or by another program may have a key that is not a BLOB.
        // No session of the library has one (its keys are always bound as BLOBs), and it cannot be read as a key: the
        // cleaner lists BLOB keys only (a key ordering puts every other type before BLOBs, so ListExpiredByKey never
        // meets one) and counts the others to say so.
        ListExpired = SessionSql.ListExpiredWhere(t, "typeof(id) = 'blob'");
        CountForeignExpiredUpTo = $"SELECT count(*) FROM (SELECT 1 FROM {t} WHERE expires_at < @Now AND typeof(id) <> 'blob' LIMIT @Limit);";
        CountExpired = $"SELECT count(*) FROM {t} WHERE expires_at < @Now;";
        CountAll = $"SELECT count(*) FROM {t};";

        // The changes table (schema 3): other processes on the file read it to end or move what they hold open.
        var c = SqliteDialect.Instance.Quote(common.ChangesTableName!);
        RecordEnd = $"INSERT INTO {c} (at, id) VALUES (@At, @Id);";
        RecordRenewal = $"INSERT INTO {c} (at, id, new_id, user_id) VALUES (@At, @Id, @NewId, @UserId);";
        SelectChanges = $"SELECT seq AS Seq, id AS Id, new_id AS NewId, user_id AS UserId FROM {c} WHERE seq > @After ORDER BY seq LIMIT @Limit;";
        SelectLastChange = $"SELECT coalesce(max(seq), 0) FROM {c};";
        PruneChanges = $"DELETE FROM {c} WHERE at < @Before;";
    }

    /// <summary>At most <c>@Limit</c> rows expired before <c>@Now</c>, by key, after <c>@AfterId</c> (the cleaner in a mass expiry).</summary>
    public string ListExpiredByKey { get; }

    /// <summary>The shared <see cref="SessionSql.ListExpired"/>, for rows whose key is a BLOB (every row the library writes).</summary>
    public string ListExpired { get; }

    /// <summary>How many rows expired before <c>@Now</c> have a key that is not a BLOB (not written by the library), counting at most <c>@Limit</c>.</summary>
    public string CountForeignExpiredUpTo { get; }

    /// <summary>How many rows expired before <c>@Now</c>, counting at most <c>@Limit</c>.</summary>
    public string CountExpiredUpTo { get; }

    /// <summary>How many rows expired before <c>@Now</c>.</summary>
    public string CountExpired { get; }

    /// <summary>How many rows the table holds.</summary>
    public string CountAll { get; }

    /// <summary>Records that the session under <c>@Id</c> ended, at <c>@At</c>.</summary>
    public string RecordEnd { get; }

    /// <summary>Records that the session under <c>@Id</c> moved to <c>@NewId</c>, bound to <c>@UserId</c>, at <c>@At</c>.</summary>
    public string RecordRenewal { get; }

    /// <summary>The changes after sequence number <c>@After</c>, oldest first, at most <c>@Limit</c>.</summary>
    public string SelectChanges { get; }

    /// <summary>The newest change's sequence number, or 0.</summary>
    public string SelectLastChange { get; }

    /// <summary>Deletes the changes recorded before <c>@Before</c>.</summary>
    public string PruneChanges { get; }

    public string RenewInsert { get; }

    public string DeleteByUserBatch { get; }

    /// <summary>A batch of the rows whose recorded sign-in matches the filter, live or expired, except <c>@ExceptId</c>, at most <c>@Limit</c>, returning their lifetimes.</summary>
    public Func<SessionSignInFilter, string> DeleteBySignInBatch { get; }
}
