namespace SessionMiddleware;

/// <summary>
/// The names under which server-side sessions report metrics and traces: the meter, the activity source and each
/// instrument, for OpenTelemetry (<c>.WithMetrics(m =&gt; m.AddMeter(ServerSideSessionDiagnostics.MeterName))</c>)
/// and <c>dotnet-counters monitor --counters SessionMiddleware</c>. No instrument has a session ID, user ID or IP
/// address as a tag.
/// </summary>
public static class ServerSideSessionDiagnostics
{
    /// <summary>The name of the one <see cref="System.Diagnostics.Metrics.Meter"/>: <c>SessionMiddleware</c>.</summary>
    public const string MeterName = "SessionMiddleware";

    /// <summary>The name of the one <see cref="System.Diagnostics.ActivitySource"/>: <c>SessionMiddleware</c>.</summary>
    public const string ActivitySourceName = "SessionMiddleware";

    /// <summary>Counter (<c>{session}</c>): sessions stored for the first time.</summary>
    public const string SessionsCreated = "sessionmiddleware.sessions.created";

    /// <summary>
    /// Counter (<c>{session}</c>): sessions ended, tag <c>reason</c>: <c>abandoned</c>, <c>signed_out</c>, <c>revoked</c>,
    /// or <c>expired</c> (deleted by the cleaner past their idle or absolute timeout).
    /// </summary>
    public const string SessionsEnded = "sessionmiddleware.sessions.ended";

    /// <summary>Counter (<c>{session}</c>): session IDs renewed (the same session under a new ID).</summary>
    public const string SessionsRenewed = "sessionmiddleware.sessions.renewed";

    /// <summary>
    /// Counter (<c>{session}</c>): new sessions not stored because their client reached
    /// <see cref="ServerSideSessionOptions.NewSessionLimit"/> (each answered <c>429</c>).
    /// </summary>
    public const string SessionsRateLimited = "sessionmiddleware.sessions.rate_limited";

    /// <summary>
    /// Counter: sign-ins refused, tagged <c>reason</c> (<c>session_limit</c>: the user was at
    /// <see cref="ServerSideSessionOptions.MaxSessionsPerUser"/> under <see cref="MaxSessionsBehavior.RefuseSignIn"/>).
    /// Sessions the cap ended count in <see cref="SessionsEnded"/> with reason <c>session_limit</c>.
    /// </summary>
    public const string SignInsRefused = "sessionmiddleware.sign_ins.refused";

    /// <summary>
    /// Counter (<c>{cookie}</c>): session cookies not honoured, tag <c>reason</c>: <c>unprotect_failed</c> (not protected by
    /// this application's key ring, e.g. servers not sharing keys, or tampered with), <c>malformed</c>, or
    /// <c>unknown_session</c> (a valid cookie whose session does not exist or has expired).
    /// </summary>
    public const string CookiesRejected = "sessionmiddleware.cookies.rejected";

    /// <summary>
    /// Counter (<c>{commit}</c>): writes of session data (create, update, renew), tag <c>outcome</c>: <c>committed</c>,
    /// <c>merged_after_conflict</c> or <c>failed</c>.
    /// </summary>
    public const string Commits = "sessionmiddleware.commits";

    /// <summary>
    /// Histogram (<c>s</c>): the duration of each store call, tags <c>db.system.name</c> (<c>sqlite</c>, <c>postgresql</c>,
    /// <c>other_sql</c>), <c>db.operation.name</c> (<c>load</c>, <c>create</c>, <c>update</c>, <c>touch</c>, <c>renew</c>,
    /// <c>delete</c>, <c>cleanup</c>) and, on failure, <c>error.type</c>.
    /// </summary>
    public const string StoreOperationDuration = "sessionmiddleware.store.operation.duration";

    /// <summary>Counter (<c>{session}</c>): expired sessions deleted by the cleaner.</summary>
    public const string CleanupRowsDeleted = "sessionmiddleware.cleanup.rows_deleted";

    /// <summary>Histogram (<c>s</c>): the duration of each cleanup run, tag <c>error.type</c> on failure.</summary>
    public const string CleanupDuration = "sessionmiddleware.cleanup.duration";

    /// <summary>Histogram (<c>{write}</c>): the writes group-committed in one SQLite transaction.</summary>
    public const string WriteBatchSize = "sessionmiddleware.write_batch.size";

    /// <summary>
    /// Observable gauge (<c>{session}</c>): the live sessions counted by the cleaner after its last run (one count per
    /// cleanup interval, and only while the gauge is listened to; never a count per scrape).
    /// </summary>
    public const string SessionsStored = "sessionmiddleware.sessions.stored";
}
