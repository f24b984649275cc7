using Microsoft.Extensions.Logging;

namespace SessionMiddleware.Logging;

/// <summary>
/// Every log message of the library, with fixed event ids. Sessions are named by their public
/// <c>ISession.Id</c> (a hash), never by the secret ID or the cookie.
/// </summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Debug, "The session cookie was rejected ({Reason}); the request gets a new empty session.", EventName = "CookieRejected")]
    public static partial void CookieRejected(ILogger logger, string reason);

    [LoggerMessage(17, LogLevel.Debug, "The session header {HeaderName} was rejected ({Reason}); the request gets a new empty session, whose ID a write returns in that header.", EventName = "HeaderRejected")]
    public static partial void HeaderRejected(ILogger logger, string headerName, string reason);

    [LoggerMessage(2, LogLevel.Debug, "Session {SessionId} was not found or has expired; the request gets a new empty session.", EventName = "SessionNotFound")]
    public static partial void SessionNotFound(ILogger logger, string sessionId);

    [LoggerMessage(3, LogLevel.Error, "Loading the session failed; the request is answered with 503 rather than run with an empty session.", EventName = "LoadFailed")]
    public static partial void LoadFailed(ILogger logger, Exception exception);

    [LoggerMessage(4, LogLevel.Error, "Committing session {SessionId} failed; the client gets an error instead of a success for a lost write.", EventName = "CommitFailed")]
    public static partial void CommitFailed(ILogger logger, string sessionId, Exception exception);

    [LoggerMessage(5, LogLevel.Debug, "Session {SessionId} created.", EventName = "SessionCreated")]
    public static partial void SessionCreated(ILogger logger, string sessionId);

    [LoggerMessage(6, LogLevel.Information, "Session {SessionId} was removed while this request ran (revoked, abandoned or expired); its changes were not written.", EventName = "SessionGoneAtCommit")]
    public static partial void SessionGoneAtCommit(ILogger logger, string sessionId);

    [LoggerMessage(7, LogLevel.Warning, "A new session was written after the response had started, so its cookie could not be sent; the data was not stored.", EventName = "NewSessionAfterResponseStarted")]
    public static partial void NewSessionAfterResponseStarted(ILogger logger);

    [LoggerMessage(8, LogLevel.Debug, "Session {SessionId} changed by a concurrent request; merged this request's changes and retrying (attempt {Attempt}).", EventName = "CommitConflict")]
    public static partial void CommitConflict(ILogger logger, string sessionId, int attempt);

    [LoggerMessage(9, LogLevel.Warning, "The request failed with an exception; the changes it made to session {SessionId} were not committed.", EventName = "ChangesDiscarded")]
    public static partial void ChangesDiscarded(ILogger logger, string sessionId);

    [LoggerMessage(10, LogLevel.Warning, "Session {SessionId} holds data that cannot be read ({Reason}); it is treated as empty and replaced on the next write.", EventName = "CorruptSessionData")]
    public static partial void CorruptSessionData(ILogger logger, string sessionId, string reason);

    [LoggerMessage(2540, LogLevel.Warning, "Session {SessionId} holds a value under key {Key} that cannot be read as {Type} (at JSON path {Path}); TryGet returns false and the value is left as it is.", EventName = "SessionValueUnreadable")]
    public static partial void SessionValueUnreadable(ILogger logger, string sessionId, string key, string type, string path);

    [LoggerMessage(11, LogLevel.Information, "Session {OldSessionId} renewed as {SessionId}; the old ID is dead.", EventName = "SessionRenewed")]
    public static partial void SessionRenewed(ILogger logger, string oldSessionId, string sessionId);

    [LoggerMessage(12, LogLevel.Information, "Session {SessionId} abandoned.", EventName = "SessionAbandoned")]
    public static partial void SessionAbandoned(ILogger logger, string sessionId);

    [LoggerMessage(13, LogLevel.Warning, "Session {SessionId} asked for a new ID after the response had started, so the new cookie could not be sent; the ID was kept.", EventName = "RenewAfterResponseStarted")]
    public static partial void RenewAfterResponseStarted(ILogger logger, string sessionId);

    [LoggerMessage(14, LogLevel.Information, "Session {SessionId} revoked.", EventName = "SessionRevoked")]
    public static partial void SessionRevoked(ILogger logger, string sessionId);

    [LoggerMessage(15, LogLevel.Information, "Revoked {Count} sessions of a user (user ID of {UserIdLength} characters, not logged).", EventName = "UserSessionsRevoked")]
    public static partial void UserSessionsRevoked(ILogger logger, int count, int userIdLength);

    [LoggerMessage(16, LogLevel.Warning, "Recording the access of session {SessionId} failed; the request goes on (only the idle timer was not moved).", EventName = "TouchFailed")]
    public static partial void TouchFailed(ILogger logger, string sessionId, Exception exception);

    [LoggerMessage(20, LogLevel.Information, "Session cleanup deleted {Count} expired sessions in {Batches} batches in {ElapsedMs:0.0} ms.", EventName = "CleanupCompleted")]
    public static partial void CleanupCompleted(ILogger logger, int count, int batches, double elapsedMs);

    [LoggerMessage(2360, LogLevel.Information, "Session cleanup runs every {Interval} (the first run in {FirstRun}); a run that deletes expired sessions is logged at Information, an empty run at Debug, a failed one as an Error.", EventName = "CleanupStarted")]
    public static partial void CleanupStarted(ILogger logger, TimeSpan interval, TimeSpan firstRun);

    [LoggerMessage(22, LogLevel.Debug, "Session cleanup found no expired sessions ({ElapsedMs:0.0} ms).", EventName = "CleanupFoundNothing")]
    public static partial void CleanupFoundNothing(ILogger logger, double elapsedMs);

    [LoggerMessage(21, LogLevel.Error, "Session cleanup failed after deleting {Count} expired sessions in {ElapsedMs:0.0} ms; it will retry at the next interval.", EventName = "CleanupFailed")]
    public static partial void CleanupFailed(ILogger logger, int count, double elapsedMs, Exception exception);

    [LoggerMessage(32, LogLevel.Error, "A group transaction of {Count} session writes failed; none of them was stored.", EventName = "WriteBatchFailed")]
    public static partial void WriteBatchFailed(ILogger logger, int count, Exception exception);

    [LoggerMessage(33, LogLevel.Warning, "A background WAL checkpoint of the session database failed; the next one tries again.", EventName = "CheckpointFailed")]
    public static partial void CheckpointFailed(ILogger logger, Exception exception);

    [LoggerMessage(36, LogLevel.Debug, "The SQLite store's row cache watches for commits through {Source}.", EventName = "RowCacheWatchOpened")]
    public static partial void RowCacheWatchOpened(ILogger logger, string source);

    [LoggerMessage(35, LogLevel.Warning, "The SQLite store's row cache could not read the database's data version; loads read the table until it can again.", EventName = "RowCacheWatchFailed")]
    public static partial void RowCacheWatchFailed(ILogger logger, Exception exception);

    [LoggerMessage(34, LogLevel.Debug, "WAL checkpoint: {Frames} frames, {Left} left after the background step; the restart step copied the rest in {ElapsedMs:0.0} ms, so the next write starts the WAL over.", EventName = "CheckpointFinishedByWriter")]
    public static partial void CheckpointFinishedByWriter(ILogger logger, long frames, long left, double elapsedMs);

    [LoggerMessage(60, LogLevel.Debug, "WAL checkpoint: {Frames} frames, {Left} left after the background step; the restart step could not take the write lock or wait out older readers within {WaitMs} ms, the next one tries again.", EventName = "CheckpointRestartBusy")]
    public static partial void CheckpointRestartBusy(ILogger logger, long frames, long left, long waitMs);

    [LoggerMessage(61, LogLevel.Information, "Another process held the session database's write lock past BusyTimeout; {Count} waiting writes try again (attempt {Attempt}), each until its caller's IOTimeout.", EventName = "WriteLockBusy")]
    public static partial void WriteLockBusy(ILogger logger, int count, int attempt);

    [LoggerMessage(70, LogLevel.Warning, "The {EventName} handler of ServerSideSessionOptions.Events threw for session {SessionId}; the exception is ignored (the request or the cleanup run goes on).", EventName = "SessionEventHandlerFailed")]
    public static partial void SessionEventHandlerFailed(ILogger logger, string eventName, string sessionId, Exception exception);

    [LoggerMessage(71, LogLevel.Debug, "Session cleanup raised the end of {Raised} expired sessions and deleted {Deleted}; the others were deleted or used meanwhile by another server.", EventName = "CleanupBatchPartlyDeleted")]
    public static partial void CleanupBatchPartlyDeleted(ILogger logger, int raised, int deleted);

    [LoggerMessage(72, LogLevel.Warning, "Session cleanup leaves {Count} expired rows of table \"{TableName}\" (counting up to {CountedUpTo}) whose key is not a BLOB: the library never writes such a row (written by hand or by another program), and cannot read its key. Delete them with DELETE FROM \"{TableName}\" WHERE typeof(id) <> 'blob'.", EventName = "CleanupForeignRowsLeft")]
    public static partial void CleanupForeignRowsLeft(ILogger logger, long count, int countedUpTo, string tableName);

    [LoggerMessage(30, LogLevel.Information, "Session table \"{TableName}\" is ready (created: {Created}, upgraded from schema version: {UpgradedFrom}, schema version {SchemaVersion}, journal mode {JournalMode}).", EventName = "Migrated")]
    public static partial void Migrated(ILogger logger, string tableName, bool created, int? upgradedFrom, int schemaVersion, string journalMode);

    // Event id 31 is the PostgreSQL package's MigratedPostgreSql.

    [LoggerMessage(40, LogLevel.Warning, "The session cookie \"{CookieName}\" is Secure (ServerSideSessionOptions.Cookie.SecurePolicy is {SecurePolicy}) but was set on a plain-HTTP request to {Host}: browsers other than on localhost drop it, so every request starts a new session. Serve the app over HTTPS (behind a proxy, forward the scheme with UseForwardedHeaders), or set ServerSideSessionOptions.Cookie.SecurePolicy to SameAsRequest. Logged once.", EventName = "SecureCookieOverHttp")]
    public static partial void SecureCookieOverHttp(ILogger logger, string cookieName, string securePolicy, string host);

    [LoggerMessage(41, LogLevel.Warning, "ASP.NET Core's own session is registered (AddSession(), which UseSession() needs) beside server-side sessions: with UseSession() in the pipeline the two fight over HttpContext.Session. Remove AddSession() and UseSession(); UseServerSideSessions() provides HttpContext.Session.", EventName = "AspNetCoreSessionAlsoRegistered")]
    public static partial void AspNetCoreSessionAlsoRegistered(ILogger logger);

    [LoggerMessage(42, LogLevel.Debug, "Session table checked at startup: it exists with schema version {SchemaVersion} and the expected shape.", EventName = "SchemaChecked")]
    public static partial void SchemaChecked(ILogger logger, int schemaVersion);

    [LoggerMessage(50, LogLevel.Debug, "A sign-in of scheme {Scheme} was stored in session {SessionId}.", EventName = "TicketStored")]
    public static partial void TicketStored(ILogger logger, string scheme, string sessionId);

    [LoggerMessage(51, LogLevel.Debug, "The session holds no sign-in of scheme {Scheme} for the authentication cookie (signed out, revoked or expired); the request is anonymous.", EventName = "TicketNotFound")]
    public static partial void TicketNotFound(ILogger logger, string scheme);

    [LoggerMessage(52, LogLevel.Warning, "The sign-in of scheme {Scheme} kept in the session could not be read (Data Protection keys changed or not shared between servers?); the request is anonymous.", EventName = "TicketUnreadable")]
    public static partial void TicketUnreadable(ILogger logger, string scheme, Exception exception);

    [LoggerMessage(53, LogLevel.Information, "The session is no longer bound to the user of its sign-in of scheme {Scheme}; the request is anonymous.", EventName = "TicketUserMismatch")]
    public static partial void TicketUserMismatch(ILogger logger, string scheme);

    [LoggerMessage(65, LogLevel.Debug, "Session {OldSessionId} was renewed as {SessionId} by a concurrent request while this request ran; this request's changes follow it there.", EventName = "RenewalFollowed")]
    public static partial void RenewalFollowed(ILogger logger, string oldSessionId, string sessionId);

    [LoggerMessage(66, LogLevel.Information, "Session {OldSessionId} was renewed as {SessionId} by a concurrent sign-in of the same user; this request's sign-in takes that ID instead of renewing again.", EventName = "RenewalAdopted")]
    public static partial void RenewalAdopted(ILogger logger, string oldSessionId, string sessionId);

    [LoggerMessage(67, LogLevel.Information, "Session {OldSessionId} had been renewed as {SessionId}; the revoke ended it under its new ID.", EventName = "RevokeFollowedRenewal")]
    public static partial void RevokeFollowedRenewal(ILogger logger, string oldSessionId, string sessionId);

    [LoggerMessage(68, LogLevel.Warning, "Session {OldSessionId} was renewed by a sign-in while this request ran; a request begun before a sign-in does not write into the signed-in session, so its changes were not written.", EventName = "RenewalBySignInNotFollowed")]
    public static partial void RenewalBySignInNotFollowed(ILogger logger, string oldSessionId);

    [LoggerMessage(69, LogLevel.Information, "Session {OldSessionId} had been renewed as {SessionId} by a concurrent request of the same user; the sign-out ended it under its new ID.", EventName = "SignOutFollowedRenewal")]
    public static partial void SignOutFollowedRenewal(ILogger logger, string oldSessionId, string sessionId);

    [LoggerMessage(90, LogLevel.Warning, "Client {Client} reached ServerSideSessionOptions.NewSessionLimit ({Limit} new sessions per {Window}); its new sessions are answered 429 for {RetryAfter} more. Behind a reverse proxy every client has the proxy's address unless UseForwardedHeaders() runs before UseServerSideSessions() (README: \"Disk growth and limits\"). Logged once per client and window.", EventName = "NewSessionLimitReached")]
    public static partial void NewSessionLimitReached(ILogger logger, string client, int limit, TimeSpan window, TimeSpan retryAfter);

    [LoggerMessage(91, LogLevel.Debug, "A new session of client {Client} was not stored: ServerSideSessionOptions.NewSessionLimit is reached; answered 429.", EventName = "NewSessionRefused")]
    public static partial void NewSessionRefused(ILogger logger, string client);

    [LoggerMessage(92, LogLevel.Warning, "More than {MaxClients} clients created sessions within one ServerSideSessionOptions.NewSessionLimitWindow; until the window ends, further clients share 1,024 counters by network (IPv4 /24, IPv6 /48), each with the allowance of one client (the limiter's memory is bounded). Logged once per window.", EventName = "NewSessionLimitTableFull")]
    public static partial void NewSessionLimitTableFull(ILogger logger, int maxClients);

    [LoggerMessage(2320, LogLevel.Warning, "A request from {Address}, a loopback or private address, carries X-Forwarded-For: a reverse proxy forwards it, but its forwarded headers are not applied, so every client has the proxy's address. ServerSideSessionOptions.NewSessionLimit does not limit loopback and private addresses (NewSessionLimitIncludesPrivateAddresses is false), so it limits none of these clients. Call app.UseForwardedHeaders() before app.UseServerSideSessions(), with the proxy in ForwardedHeadersOptions.KnownProxies or KnownNetworks (README: \"Disk growth and limits\"). Logged once.", EventName = "ForwardedHeadersNotApplied")]
    public static partial void ForwardedHeadersNotApplied(ILogger logger, string address);

    [LoggerMessage(93, LogLevel.Warning, "{Count} session cookies since {Since:u} could not be unprotected: they were protected by another Data Protection key ring (servers that do not share their keys and application name, or keys lost at a restart or deployment) or tampered with; those users lose their sessions. Share one key ring between the servers (README: \"Several servers: PostgreSQL\"). Logged at most every {Interval}.", EventName = "CookiesFromAnotherKeyRing")]
    public static partial void CookiesFromAnotherKeyRing(ILogger logger, long count, DateTimeOffset since, TimeSpan interval);

    [LoggerMessage(2355, LogLevel.Debug, "A sign-in of scheme {Scheme} over one that ended in the same request (a sign-out, or another user's sign-in) was kept under a new reference in session {SessionId}; the earlier authentication cookie no longer matches.", EventName = "TicketReferenceReplaced")]
    public static partial void TicketReferenceReplaced(ILogger logger, string scheme, string sessionId);

    [LoggerMessage(2480, LogLevel.Information, "Ended {Count} sessions by their recorded sign-in, reason {Reason}.", EventName = "SignInsEnded")]
    public static partial void SignInsEnded(ILogger logger, int count, string reason);

    [LoggerMessage(2481, LogLevel.Information, "Session {SessionId} ended: its user signed in elsewhere over the cap of {MaxSessions} sessions (MaxSessionsPerUser), and it was the least recently used.", EventName = "SessionDisplaced")]
    public static partial void SessionDisplaced(ILogger logger, string sessionId, int maxSessions);

    [LoggerMessage(2482, LogLevel.Warning, "A sign-in in session {SessionId} was refused: its user already has {MaxSessions} sessions (MaxSessionsPerUser, RefuseSignIn). Nothing was stored; the request's session changes are dropped.", EventName = "SignInRefused")]
    public static partial void SignInRefused(ILogger logger, int maxSessions, string sessionId);
}
