namespace SessionMiddleware.Storage;

/// <summary>The statements built per call: the management queries over a <see cref="SessionFilter"/> and the table's statistics.</summary>
internal sealed partial class SessionSql
{
    /// <summary>
    /// The live sessions matching <paramref name="filter"/> after <paramref name="after"/>, as <see cref="SessionInfoRow"/>,
    /// most recently created first (creation time, then key, descending), at most <paramref name="limit"/>.
    /// </summary>
    /// <param name="filter">Which sessions.</param>
    /// <param name="after">Where the previous page ended, or <see langword="null"/>.</param>
    /// <param name="limit">The most rows.</param>
    /// <param name="expiry">"Now" and the timeouts.</param>
    /// <returns>The statement and its parameters.</returns>
    public SessionSqlCommand Query(SessionFilter filter, SessionCursor? after, int limit, ExpiryParameters expiry)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        var parameters = LiveParameters(expiry);
        var where = FilterConditions(filter, parameters);
        if (after is not null)
        {
            where += " AND (created_at, id) < (@AfterCreatedAt, @AfterId)";
            parameters["AfterCreatedAt"] = after.CreatedAt;
            parameters["AfterId"] = after.Key;
        }

        parameters["Limit"] = limit;
        return new SessionSqlCommand(
            "SELECT id AS Id, user_id AS UserId, created_at AS CreatedAt, last_access AS LastAccess, ip AS Ip, user_agent AS UserAgent " +
            $"FROM {Table} WHERE {where} ORDER BY created_at DESC, id DESC LIMIT @Limit;",
            parameters);
    }

    /// <summary>Counts the live sessions matching <paramref name="filter"/> (one <c>bigint</c> column).</summary>
    /// <param name="filter">Which sessions.</param>
    /// <param name="expiry">"Now" and the timeouts.</param>
    /// <returns>The statement and its parameters.</returns>
    public SessionSqlCommand Count(SessionFilter filter, ExpiryParameters expiry)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var parameters = LiveParameters(expiry);
        var where = FilterConditions(filter, parameters);
        return new SessionSqlCommand($"SELECT count(*) FROM {Table} WHERE {where};", parameters);
    }

    /// <summary>
    /// One row about the whole table, as <see cref="SessionTableStatistics"/>: all rows, live rows, live rows bound to
    /// a user, the oldest and newest creation time of a live row. Reads every row: for an operator's tool, not a request.
    /// </summary>
    /// <param name="expiry">"Now" and the timeouts.</param>
    /// <returns>The statement and its parameters.</returns>
    public SessionSqlCommand Statistics(ExpiryParameters expiry) => new(_statistics, LiveParameters(expiry));

    // The one place where the parameters of LiveCondition are bound for the statements built here.
    private static Dictionary<string, object?> LiveParameters(ExpiryParameters expiry) => new(StringComparer.Ordinal)
    {
        ["Now"] = expiry.Now,
    };

    private static string FilterConditions(SessionFilter filter, Dictionary<string, object?> parameters)
    {
        var where = LiveCondition;
        if (filter.UserId is not null)
        {
            where += " AND user_id = @UserId";
            parameters["UserId"] = filter.UserId;
        }

        if (filter.IsBound is { } bound)
        {
            where += bound ? " AND user_id IS NOT NULL" : " AND user_id IS NULL";
        }

        Add(filter.CreatedAfter, "created_at >", "CreatedAfter");
        Add(filter.CreatedBefore, "created_at <", "CreatedBefore");
        Add(filter.LastAccessAfter, "last_access >", "LastAccessAfter");
        Add(filter.LastAccessBefore, "last_access <", "LastAccessBefore");
        return where;

        void Add(DateTimeOffset? value, string condition, string name)
        {
            if (value is { } v)
            {
                where += $" AND {condition} @{name}";
                parameters[name] = v.ToUnixTimeSeconds();
            }
        }
    }

    /// <summary>
    /// The condition of the rows whose recorded sign-in matches <paramref name="filter"/>, over <c>@Issuer</c>, <c>@Sid</c>,
    /// <c>@Subject</c>, <c>@UserId</c> and <c>@CredentialStamp</c> (<see cref="SignInFilterParameters"/>); each kind is served
    /// by an index (<c>idp_sid</c>, <c>idp_subject</c>, <c>user_id</c>).
    /// </summary>
    /// <param name="filter">Which sign-ins.</param>
    /// <returns>An SQL condition.</returns>
    public static string SignInCondition(SessionSignInFilter filter)
    {
        ArgumentNullException.ThrowIfNull(filter);
        return filter switch
        {
            { Sid: not null } => "idp_issuer = @Issuer AND idp_sid = @Sid",
            { Subject: not null } => "idp_issuer = @Issuer AND idp_subject = @Subject",
            _ => "user_id = @UserId AND credential_stamp IS NOT NULL AND credential_stamp <> @CredentialStamp",
        };
    }

    /// <summary>The parameters of <see cref="SignInCondition"/>, with <c>@ExceptId</c> and <c>@Limit</c>.</summary>
    /// <param name="filter">Which sign-ins.</param>
    /// <param name="exceptKey">The key of a row to keep, or <see langword="null"/>.</param>
    /// <param name="limit">The most rows.</param>
    /// <returns>An object whose properties are the parameters (for Dapper and the like).</returns>
    public static SignInFilterArguments SignInFilterParameters(SessionSignInFilter filter, byte[]? exceptKey, int limit)
    {
        ArgumentNullException.ThrowIfNull(filter);
        return new SignInFilterArguments(filter.Issuer, filter.Sid, filter.Subject, filter.UserId, filter.CredentialStamp, exceptKey, limit);
    }
}
