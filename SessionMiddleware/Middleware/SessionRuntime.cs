using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace SessionMiddleware;

/// <summary>What every request's session machinery shares: options read once, the store, the cookie protector, the clock.</summary>
internal sealed class SessionRuntime
{
    /// <summary>The most attempts a commit makes when concurrent requests keep changing the same session.</summary>
    public const int MaxCommitAttempts = 16;

    /// <summary>The longest User-Agent recorded with a session.</summary>
    public const int MaxUserAgentLength = 256;

    public SessionRuntime(
        IOptions<ServerSideSessionOptions> options,
        IServerSideSessionStore store,
        SessionIdProtector protector,
        TimeProvider timeProvider,
        ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        Options = options.Value;
        Store = store;
        Protector = protector;
        TimeProvider = timeProvider;
        Logger = loggerFactory.CreateLogger("SessionMiddleware.ServerSideSessionMiddleware");
        CookieName = Options.Cookie.Name!;
    }

    public ServerSideSessionOptions Options { get; }

    public IServerSideSessionStore Store { get; }

    public SessionIdProtector Protector { get; }

    public TimeProvider TimeProvider { get; }

    public ILogger Logger { get; }

    public string CookieName { get; }

    public CommitLocks CommitLocks { get; } = new();

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

    /// <summary>The cookie's attributes for this request; a <c>__Host-</c> or <c>__Secure-</c> name is always Secure.</summary>
    public CookieOptions BuildCookie(HttpContext context)
    {
        var cookie = Options.Cookie.Build(context, TimeProvider.GetUtcNow());
        if (CookieName.StartsWith("__Host-", StringComparison.Ordinal) || CookieName.StartsWith("__Secure-", StringComparison.Ordinal))
        {
            cookie.Secure = true;
        }

        return cookie;
    }

    /// <summary>Now, truncated to whole seconds as the store records it.</summary>
    public DateTimeOffset Now() => DateTimeOffset.FromUnixTimeSeconds(TimeProvider.GetUtcNow().ToUnixTimeSeconds());
}
