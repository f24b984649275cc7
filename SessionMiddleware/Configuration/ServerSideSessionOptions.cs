using Microsoft.AspNetCore.Http;
using SessionMiddleware.Configuration;

namespace SessionMiddleware;

/// <summary>
/// Settings of server-side sessions. Bound from the configuration section <c>ServerSideSessions</c> by
/// <c>AddServerSideSessions(IConfiguration)</c>; every setting is checked when the host starts.
/// </summary>
public sealed class ServerSideSessionOptions
{
    /// <summary>The configuration section name conventionally used for these options: <c>ServerSideSessions</c>.</summary>
    public const string SectionName = "ServerSideSessions";

    /// <summary>
    /// Connection string of the session database. Default <c>Data Source=sessions.db</c> (a SQLite file in
    /// the working directory).
    /// </summary>
    public string ConnectionString { get; set; } = ServerSideSessionDefaults.ConnectionString;

    /// <summary>
    /// Name of the session table. Default <c>sessions</c>. Must match <c>^[A-Za-z_][A-Za-z0-9_]{0,62}$</c>.
    /// </summary>
    public string TableName { get; set; } = ServerSideSessionDefaults.TableName;

    /// <summary>
    /// How long a session may go unused before it expires. Default 20 minutes. Must be positive and at most a year
    /// (in configuration write <c>"00:20:00"</c>: a bare <c>"20"</c> is 20 days).
    /// </summary>
    public TimeSpan IdleTimeout { get; set; } = ServerSideSessionDefaults.IdleTimeout;

    /// <summary>
    /// Longest lifetime of a session from its creation, whatever its activity; <see langword="null"/> (the
    /// default) for none. Must be positive and at most a year when set.
    /// </summary>
    public TimeSpan? AbsoluteTimeout { get; set; }

    /// <summary>
    /// How often the background cleaner deletes expired sessions. Default 60 seconds. Must be positive.
    /// </summary>
    public TimeSpan CleanupInterval { get; set; } = ServerSideSessionDefaults.CleanupInterval;

    /// <summary>
    /// Most rows the cleaner, or a revoke of a user's sessions (<see cref="ISessionManager.RevokeAllForUserAsync"/>), deletes
    /// in one statement, so that no delete holds the write lock for long: request writes wait behind at most one batch.
    /// Default 100. Must be positive.
    /// </summary>
    public int CleanupBatchSize { get; set; } = ServerSideSessionDefaults.CleanupBatchSize;

    /// <summary>
    /// A request that does not change its session records its access only when the stored last-access
    /// time is at least this old. Default 60 seconds; <see cref="TimeSpan.Zero"/> records every access (the
    /// time is stored in whole seconds, so at most one write per session and second).
    /// Must be less than <see cref="IdleTimeout"/> and not negative.
    /// </summary>
    public TimeSpan TouchInterval { get; set; } = ServerSideSessionDefaults.TouchInterval;

    /// <summary>
    /// Largest serialized size of one session's data, in bytes. Default 262,144 (256 KiB). A
    /// <see cref="ISession.Set(string, byte[])"/> that would exceed it throws. Must be positive.
    /// </summary>
    public int MaxSessionBytes { get; set; } = ServerSideSessionDefaults.MaxSessionBytes;

    /// <summary>
    /// Whether each session's data is sealed (encrypted and signed) with ASP.NET Core Data Protection before it is
    /// stored, so that a copy of the database holds neither usable IDs nor the contents. Default <see langword="false"/>.
    /// The user ID, times and device info stay readable (listing, revoking, the cleaner and the <c>dotnet-sessions</c>
    /// tool work as without it). Rows stored in clear stay readable and are sealed on their next write; turned off,
    /// sealed rows stay readable and are written in clear. <see cref="MaxSessionBytes"/> limits the clear size. Sealed
    /// data is lost with the key ring: keep the key ring, shared by every server, apart from the database.
    /// </summary>
    public bool ProtectData { get; set; }

    /// <summary>
    /// How many loaded sessions the SQLite store keeps in memory, so that a request whose session nobody changed reads
    /// no table. Default 10,000 (and at most 64 MiB of session data); 0 turns the cache off. It stays correct with
    /// several processes on one database file: a cheap check on every load (SQLite's <c>PRAGMA data_version</c>) sees any
    /// other process's commit, and the cache then reads the table again. The PostgreSQL store keeps no such cache. Must
    /// not be negative.
    /// </summary>
    public int RowCacheSize { get; set; } = ServerSideSessionDefaults.RowCacheSize;

    /// <summary>
    /// How long SQLite waits for a lock held by another connection or process before it gives up.
    /// Default 5 seconds. Must be positive.
    /// </summary>
    public TimeSpan BusyTimeout { get; set; } = ServerSideSessionDefaults.BusyTimeout;

    /// <summary>
    /// Most time one database call of a request may take before the request fails (loads: 503; commits: 500).
    /// Default 10 seconds, measured on the real clock. Must be positive. A commit is never cancelled because the
    /// client went away, only by this timeout.
    /// </summary>
    public TimeSpan IOTimeout { get; set; } = ServerSideSessionDefaults.IOTimeout;

    /// <summary>
    /// Whether a session records the client's IP address (<c>HttpContext.Connection.RemoteIpAddress</c>, so that
    /// forwarded-headers middleware applies) and User-Agent (first 256 characters) when it is created and when its
    /// ID is renewed, for <see cref="ISessionManager.ListForUserAsync"/>. Default <see langword="true"/>.
    /// </summary>
    public bool RecordDeviceInfo { get; set; } = true;

    /// <summary>
    /// Most new sessions one client may create per <see cref="NewSessionLimitWindow"/>; a new session beyond it is not
    /// stored and the request is answered <c>429 Too Many Requests</c> with <c>Retry-After</c>. Default 100; 0 turns the
    /// limit off. A client is its IP address (<c>HttpContext.Connection.RemoteIpAddress</c>, so behind a reverse proxy
    /// forwarded-headers middleware must run first, or every client shares the proxy's allowance), an IPv6 client its
    /// /64 network. Requests with a live session are never limited, nor those that do not write to a new session.
    /// Must not be negative.
    /// </summary>
    public int NewSessionLimit { get; set; } = ServerSideSessionDefaults.NewSessionLimit;

    /// <summary>
    /// The window of <see cref="NewSessionLimit"/>, which starts at a client's first new session. Default 1 minute.
    /// Must be positive and at most a day.
    /// </summary>
    public TimeSpan NewSessionLimitWindow { get; set; } = ServerSideSessionDefaults.NewSessionLimitWindow;

    /// <summary>
    /// Whether <see cref="NewSessionLimit"/> also limits clients with a loopback or private address (IPv4 127/8, 10/8,
    /// 172.16/12, 192.168/16, 169.254/16, 100.64/10; IPv6 ::1, fc00::/7, fe80::/10; their IPv4-mapped forms) and requests
    /// without an address (a Unix socket). Default <see langword="false"/>: behind a reverse proxy whose forwarded headers
    /// are not applied (<c>app.UseForwardedHeaders()</c>), every client has the proxy's address, and limiting it would
    /// lock the whole site out. Set it for an app that clients on a private network reach directly.
    /// </summary>
    public bool NewSessionLimitIncludesPrivateAddresses { get; set; }

    /// <summary>
    /// With the ticket store (<c>AddServerSideSessions(...).AddTicketStore()</c>): the claim of a signed-in user whose value
    /// the session is bound to (<see cref="IServerSideSession.UserId"/>, what <see cref="ISessionManager"/> lists and
    /// revokes by). Default <see cref="System.Security.Claims.ClaimTypes.NameIdentifier"/>, which ASP.NET Core Identity sets
    /// to the user's ID.
    /// </summary>
    public string UserIdClaimType { get; set; } = System.Security.Claims.ClaimTypes.NameIdentifier;

    /// <summary>
    /// The most live sessions one user may have; 0 (the default) for no cap. A sign-in (a session bound to a user, through
    /// <see cref="IServerSideSession.BindToUser"/> or the ticket store) over the cap does what
    /// <see cref="WhenMaxSessionsReached"/> says, atomically: simultaneous sign-ins of one user never leave more than the
    /// cap. <see cref="MaxSessionsPerUserSelector"/>, when set, decides per user instead. Must not be negative.
    /// </summary>
    public int MaxSessionsPerUser { get; set; }

    /// <summary>
    /// What a sign-in over <see cref="MaxSessionsPerUser"/> does: <see cref="MaxSessionsBehavior.EndLeastRecentlyUsed"/>
    /// (the default: the sign-in proceeds and the least recently used other sessions end) or
    /// <see cref="MaxSessionsBehavior.RefuseSignIn"/> (it throws <see cref="SessionLimitExceededException"/>).
    /// </summary>
    public MaxSessionsBehavior WhenMaxSessionsReached { get; set; } = MaxSessionsBehavior.EndLeastRecentlyUsed;

    /// <summary>
    /// The cap for one user, decided per sign-in (for example 1 for administrators, by a role claim of
    /// <see cref="MaxSessionsContext.Principal"/>); return 0 for no cap. When <see langword="null"/> (the default),
    /// <see cref="MaxSessionsPerUser"/> applies to every user.
    /// </summary>
    public Func<MaxSessionsContext, ValueTask<int>>? MaxSessionsPerUserSelector { get; set; }

    /// <summary>
    /// What the app is told when sessions are created, renewed and ended (with the reason, the user and the public ID),
    /// including the expired sessions the cleaner deletes. See <see cref="ServerSideSessionEvents"/> for what is
    /// guaranteed (expiries: at least once; handlers must be idempotent). Must not be <see langword="null"/>.
    /// </summary>
    public ServerSideSessionEvents Events { get; set; } = new();

    /// <summary>
    /// The request and response header that may carry the session ID instead of the cookie, for API and mobile clients
    /// (for example <c>X-Session</c>); <see langword="null"/> (the default) for the cookie only. A request that sends the
    /// header is served by it alone: the cookie is then neither read nor set, a new or renewed ID comes back in the
    /// response header, and an ended session's response carries the header with an empty value. A client without a session
    /// sends the header with an empty value. Must be an HTTP header name (a token) that no other part of HTTP uses
    /// (not <c>Cookie</c>, <c>Authorization</c>, <c>Sec-</c>…).
    /// </summary>
    public string? HeaderName { get; set; }

    /// <summary>
    /// Whether a request that sends <see cref="HeaderName"/> also gets the cookie set (and expired) when its ID is new,
    /// renewed or ended, besides the response header: for an app whose script calls its API with the header and whose
    /// pages load with the cookie. Default <see langword="false"/>: a header client gets no cookie. The header still
    /// wins over the cookie when a request sends both.
    /// </summary>
    public bool HeaderAlsoSetsCookie { get; set; }

    /// <summary>
    /// The session cookie. Defaults: name <c>.ServerSession</c>, <c>HttpOnly</c>, <c>SameSite=Lax</c>,
    /// path <c>/</c>, <see cref="CookieSecurePolicy.SameAsRequest"/>, essential (not subject to consent).
    /// The cookie carries only the protected session ID. Name it with the <c>__Host-</c> prefix for the
    /// strictest browser rules (it is then always sent Secure, with path <c>/</c> and no domain). Set
    /// <see cref="CookieBuilder.MaxAge"/> for a persistent cookie; it is re-issued whenever the access is
    /// recorded, so its expiry slides with the server's. <see cref="CookieBuilder.Expiration"/> is not supported.
    /// </summary>
    public CookieBuilder Cookie { get; set; } = new CookieBuilder
    {
        Name = ServerSideSessionDefaults.CookieName,
        HttpOnly = true,
        SameSite = SameSiteMode.Lax,
        Path = ServerSideSessionDefaults.CookiePath,
        SecurePolicy = CookieSecurePolicy.SameAsRequest,
        IsEssential = true,
    };
}
