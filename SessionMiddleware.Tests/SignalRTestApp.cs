using System.Net;
using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// An app with cookie authentication through the ticket store and a hub at <c>/hub</c> tied to sessions
/// (<c>AddSignalR().AddServerSideSessions()</c>), on real Kestrel: <c>/signin?user=</c>, <c>/signout</c>, <c>/whoami</c>,
/// and the session endpoints of <see cref="SessionTestHost"/> (<c>/id</c>, <c>/abandon</c>, <c>/regenerate</c>, …).
/// </summary>
internal static class SignalRTestApp
{
    public static Task<SessionTestHost> StartAsync(
        string folder,
        FakeTimeProvider? time = null,
        Action<ServerSideSessionOptions>? configure = null,
        Action<ServerSideSessionHubOptions>? hub = null,
        bool slowStart = false,
        Action<IServerSideSessionsBuilder>? sessions = null) =>
        SessionTestHost.StartAsync(
            folder,
            configure,
            services: s =>
            {
                s.AddTicketStore();
                sessions?.Invoke(s);
                s.Services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme).AddCookie();
                s.Services.AddSingleton<HubRecorder>();
                s.Services.AddSignalR().AddServerSideSessions(hub ?? (static _ => { }));
                if (slowStart)
                {
                    // An app filter after the session's that works a moment before the method body starts (as a hub
                    // constructor or a filter doing synchronous work would).
                    s.Services.Configure<HubOptions>(o => o.AddFilter(new SlowStartFilter()));
                }
            },
            endpoints: app =>
            {
                app.UseAuthentication();
                app.MapGet("/signin", async (HttpContext c, string user) =>
                {
                    var identity = new ClaimsIdentity([new Claim(ClaimTypes.NameIdentifier, user), new Claim(ClaimTypes.Name, user)], CookieAuthenticationDefaults.AuthenticationScheme);
                    await c.SignInAsync(new ClaimsPrincipal(identity));
                    return "signed in";
                });
                app.MapGet("/signout", async (HttpContext c) =>
                {
                    await c.SignOutAsync();
                    return "signed out";
                });
                app.MapGet("/whoami", (HttpContext c) => c.User.Identity?.IsAuthenticated == true ? c.User.Identity.Name! : "anonymous");
                app.Use(RevokeFirstAsync);
                app.MapHub<SessionTestHub>("/hub");
            },
            time: time ?? new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds())));

    /// <summary>
    /// A hub connect request with <c>revokeFirst</c> in its query has its session revoked (from outside the request) after
    /// the request loaded it and before the hub sees the connection: a session that ends as a connection is being made.
    /// </summary>
    private static async Task RevokeFirstAsync(HttpContext context, RequestDelegate next)
    {
        if (context.Request.Path == "/hub" && context.Request.Query.ContainsKey("id") && context.Request.Query.ContainsKey("revokeFirst"))
        {
            var sessionId = context.Session.Id;
            var manager = context.RequestServices.GetRequiredService<ISessionManager>();
            Task<bool> revoke;
            using (ExecutionContext.SuppressFlow())
            {
                revoke = Task.Run(() => manager.RevokeAsync(sessionId));
            }

            Assert.That(await revoke, Is.True);
        }

        await next(context);
    }

    /// <summary>Signs a new browser in as <paramref name="user"/>: its cookies and its session ID.</summary>
    public static async Task<(CookieContainer Cookies, string SessionId)> SignInAsync(SessionTestHost host, string user)
    {
        var cookies = new CookieContainer();
        var browser = host.CreateBrowser(cookies);
        Assert.That(await browser.GetTextAsync("/signin?user=" + user), Is.EqualTo("signed in"));
        return (cookies, await browser.GetTextAsync("/id"));
    }
}

/// <summary>The order in which hub method bodies started, by a counter shared with the test.</summary>
internal sealed class HubRecorder
{
    private long _sequence;
    private long _lastTickStart;
    private int _ticks;
    private int _connects;

    /// <summary>Takes the next number: a hub method body as it starts, or the test at a moment it marks.</summary>
    public long Next() => Interlocked.Increment(ref _sequence);

    public int Ticks => Volatile.Read(ref _ticks);

    /// <summary>How many times the hub's <c>OnConnectedAsync</c> ran.</summary>
    public int Connects => Volatile.Read(ref _connects);

    public void Connected() => Interlocked.Increment(ref _connects);

    /// <summary>The number the last <see cref="SessionTestHub.Tick"/> body to start took.</summary>
    public long LastTickStart => Interlocked.Read(ref _lastTickStart);

    public void TickStarted()
    {
        var n = Next();
        Interlocked.Increment(ref _ticks);
        long last;
        do
        {
            last = Interlocked.Read(ref _lastTickStart);
        }
        while (n > last && Interlocked.CompareExchange(ref _lastTickStart, n, last) != last);
    }
}

/// <summary>Takes a millisecond, synchronously, before each <c>Tick</c> body starts.</summary>
internal sealed class SlowStartFilter : IHubFilter
{
    public ValueTask<object?> InvokeMethodAsync(HubInvocationContext invocationContext, Func<HubInvocationContext, ValueTask<object?>> next)
    {
        if (invocationContext.HubMethodName == nameof(SessionTestHub.Tick))
        {
            Thread.Sleep(1);
        }

        return next(invocationContext);
    }
}

/// <summary>The hub of <see cref="SignalRTestApp"/>.</summary>
internal sealed class SessionTestHub(HubRecorder recorder) : Hub
{
    public override Task OnConnectedAsync()
    {
        recorder.Connected();
        return Context.GetHttpContext()?.Request.Query.ContainsKey("failConnect") == true
            ? throw new InvalidOperationException("The hub's OnConnectedAsync failed (failConnect).")
            : Task.CompletedTask;
    }

    public string Whoami() => Context.User?.Identity?.IsAuthenticated == true ? Context.User.Identity.Name! : "anonymous";

    public void Tick() => recorder.TickStarted();

    /// <summary>"Sign out here" from the hub: revokes the connection's own session (read from the request that opened it).</summary>
    public Task<bool> RevokeMine(ISessionManager sessions) => sessions.RevokeAsync(Context.GetHttpContext()!.Session.Id);
}

/// <summary>A real SignalR client connection to <c>/hub</c> with a browser's cookies, and its <c>Closed</c> event as a task.</summary>
internal sealed class HubClient : IAsyncDisposable
{
    private readonly TaskCompletionSource<Exception?> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private HubClient(HubConnection connection)
    {
        Connection = connection;
        connection.Closed += e =>
        {
            _closed.TrySetResult(e);
            return Task.CompletedTask;
        };
    }

    public HubConnection Connection { get; }

    /// <summary>Completes when the connection has closed (with the error it closed with, if any).</summary>
    public Task<Exception?> Closed => _closed.Task;

    public static Task<HubClient> ConnectAsync(SessionTestHost host, CookieContainer? cookies, HttpTransportType transport = HttpTransportType.WebSockets, string path = "/hub") =>
        ConnectAsync(new Uri(host.BaseAddress, path), cookies, transport);

    public static async Task<HubClient> ConnectAsync(Uri hub, CookieContainer? cookies, HttpTransportType transport = HttpTransportType.WebSockets)
    {
        var connection = new HubConnectionBuilder()
            .WithUrl(hub, transport, o =>
            {
                if (cookies is not null)
                {
                    o.Cookies = cookies;
                }
            })
            .Build();
        var client = new HubClient(connection);
        await connection.StartAsync();
        return client;
    }

    /// <summary>Whether <see cref="Closed"/> completes within <paramref name="bound"/> (real time).</summary>
    public async Task<bool> ClosesWithinAsync(TimeSpan bound) =>
        await Task.WhenAny(Closed, Task.Delay(bound)) == Closed;

    /// <summary>
    /// Advances the fake clock a second at a time (the live-session monitor's tick) until the connection closes or
    /// <paramref name="bound"/> (real time) passes.
    /// </summary>
    public async Task<bool> ClosesWhileTheClockTicksAsync(FakeTimeProvider time, TimeSpan bound)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (waited.Elapsed < bound)
        {
            if (await ClosesWithinAsync(TimeSpan.FromMilliseconds(50)))
            {
                return true;
            }

            time.Advance(TimeSpan.FromSeconds(1));
        }

        return false;
    }

    public ValueTask DisposeAsync() => Connection.DisposeAsync();
}
