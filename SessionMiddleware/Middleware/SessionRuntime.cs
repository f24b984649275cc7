using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SessionMiddleware.Concurrency;
using SessionMiddleware.Cookies;
using SessionMiddleware.Diagnostics;
using SessionMiddleware.Events;
using SessionMiddleware.Live;
using SessionMiddleware.Session;
using SessionMiddleware.Storage;

namespace SessionMiddleware.Middleware;

/// <summary>The singletons every request's session uses, with the options read once and the store's clock and time limit.</summary>
internal sealed class SessionRuntime
{
    /// <summary>The most attempts a commit makes when concurrent requests keep changing the same session.</summary>
    public const int MaxCommitAttempts = 16;

    /// <summary>The longest User-Agent recorded with a session.</summary>
    public const int MaxUserAgentLength = 256;

    public SessionRuntime(
        IOptions<ServerSideSessionOptions> options,
        [FromKeyedServices(InstrumentedSessionStore.ServiceKey)] IServerSideSessionStore store,
        SessionCookies cookies,
        SessionDataProtector dataProtector,
        CommitLocks commitLocks,
        TimeProvider timeProvider,
        ILogger<ServerSideSessionMiddleware> logger,
        SessionMetrics metrics,
        SessionEvents events,
        RecentRenewals renewals,
        NewSessionGate newSessions,
        LiveSessionRegistry live)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options.Value;
        Store = store;
        Cookies = cookies;
        DataProtector = dataProtector;
        CommitLocks = commitLocks;
        TimeProvider = timeProvider;
        Expiry = new SessionExpiry(Options.IdleTimeout, Options.AbsoluteTimeout, timeProvider);
        Logger = logger;
        Metrics = metrics;
        Events = events;
        Renewals = renewals;
        KeyRingRejections = new KeyRingRejectionWarning(timeProvider);
        NewSessions = newSessions;
        Live = live;
    }

    /// <summary>The sessions held open in this process (connections, circuits, <see cref="IServerSideSession.Ended"/>): told of renewals.</summary>
    public LiveSessionRegistry Live { get; }

    /// <summary>The rate-limited warning about cookies from another key ring.</summary>
    public KeyRingRejectionWarning KeyRingRejections { get; }

    /// <summary>The rules of <see cref="ServerSideSessionOptions.NewSessionLimit"/>: whom it applies to, and whether a client may create a session now.</summary>
    public NewSessionGate NewSessions { get; }

    /// <summary>The ID renewals this process committed lately, for the requests that loaded a session before its renewal.</summary>
    public RecentRenewals Renewals { get; }

    public SessionMetrics Metrics { get; }

    /// <summary>Raises <see cref="ServerSideSessionOptions.Events"/> (and counts ended sessions).</summary>
    public SessionEvents Events { get; }

    /// <summary>
    /// Whether a pipeline of the app has the session middleware (<c>UseServerSideSessions()</c>): set when it is built. The
    /// ticket store, called without the request's session, then loads it (authentication runs first) instead of failing.
    /// </summary>
    public bool MiddlewareInPipeline { get; set; }

    public ServerSideSessionOptions Options { get; }

    /// <summary>The store, instrumented: each call the request path makes is timed (<see cref="InstrumentedSessionStore"/>).</summary>
    public IServerSideSessionStore Store { get; }

    public SessionCookies Cookies { get; }

    /// <summary>Seals session data before it meets the store (<see cref="ServerSideSessionOptions.ProtectData"/>) and opens it after.</summary>
    public SessionDataProtector DataProtector { get; }

    public CommitLocks CommitLocks { get; }

    public TimeProvider TimeProvider { get; }

    /// <summary>The expiry rules of the options, for rows a remembered sign-in keeps longer.</summary>
    public SessionExpiry Expiry { get; }

    /// <summary>The request path's logger; its category is <see cref="ServerSideSessionMiddleware"/>.</summary>
    public ILogger Logger { get; }

    /// <summary>
    /// A token that cancels after <see cref="ServerSideSessionOptions.IOTimeout"/> (real time), linked to
    /// <paramref name="linked"/>; dispose it when the store call is done.
    /// </summary>
    public CancellationTokenSource StartIOTimeout(CancellationToken linked)
    {
        var source = linked.CanBeCanceled ? CancellationTokenSource.CreateLinkedTokenSource(linked) : new CancellationTokenSource();
        source.CancelAfter(Options.IOTimeout);
        return source;
    }

    /// <summary>Now, truncated to whole seconds as the store records it.</summary>
    public DateTimeOffset Now() => DateTimeOffset.FromUnixTimeSeconds(TimeProvider.GetUtcNow().ToUnixTimeSeconds());
}
