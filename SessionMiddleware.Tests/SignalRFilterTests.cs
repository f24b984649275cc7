using System.Security.Claims;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.DependencyInjection;
using SessionMiddleware.Live;
using SessionMiddleware.SignalR;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// The session hub filter's bookkeeping: a refused connection runs nothing of the hub, even calls already received; a
/// connection lets its session go when it closes, or when the hub's <c>OnConnectedAsync</c> fails.
/// </summary>
public sealed class SignalRFilterTests : TempFolderTest
{
    [Test]
    public async Task BlazorsHub_IsLeftToTheCircuitBinding_EvenWithRequireSession()
    {
        // Anonymous circuits are let in, and a circuit's end is the circuit binding's to show before it closes.
        await using var host = await SignalRTestApp.StartAsync(Folder.Path, hub: o => o.RequireSession = true);
        var filter = host.Services.GetRequiredService<SessionHubFilter>();
        var caller = new TestCallerContext();
        var connected = false;

        await filter.OnConnectedAsync(new HubLifetimeContext(caller, host.Services, new Microsoft.AspNetCore.Components.Server.ComponentHub()), _ =>
        {
            connected = true;
            return Task.CompletedTask;
        });

        Assert.Multiple(() =>
        {
            Assert.That(connected, Is.True, "the hub's OnConnectedAsync ran");
            Assert.That(caller.Aborted, Is.False, "not refused for lack of a session");
        });
    }

    [Test]
    public async Task ARefusedConnection_RunsNoHubMethod_NorTheHubsOnDisconnected()
    {
        await using var host = await SignalRTestApp.StartAsync(Folder.Path, hub: o => o.RequireSession = true);
        var filter = host.Services.GetRequiredService<SessionHubFilter>();
        var caller = new TestCallerContext();
        var hub = new SessionTestHub(new HubRecorder());
        var ran = new List<string>();

        await filter.OnConnectedAsync(new HubLifetimeContext(caller, host.Services, hub), _ =>
        {
            ran.Add("OnConnectedAsync");
            return Task.CompletedTask;
        });
        var invocation = new HubInvocationContext(caller, host.Services, hub, typeof(SessionTestHub).GetMethod(nameof(SessionTestHub.Tick))!, []);
        var refused = Assert.ThrowsAsync<HubException>(async () => await filter.InvokeMethodAsync(invocation, _ =>
        {
            ran.Add("Tick");
            return ValueTask.FromResult<object?>(null);
        }));
        await filter.OnDisconnectedAsync(new HubLifetimeContext(caller, host.Services, hub), null, (_, _) =>
        {
            ran.Add("OnDisconnectedAsync");
            return Task.CompletedTask;
        });

        Assert.Multiple(() =>
        {
            Assert.That(caller.Aborted, Is.True);
            Assert.That(refused!.Message, Does.Contain("no session"));
            Assert.That(ran, Is.Empty);
        });
    }

    [Test]
    public async Task AClosedConnection_LetsItsSessionGo()
    {
        await using var host = await SignalRTestApp.StartAsync(Folder.Path);
        var registry = host.Services.GetRequiredService<LiveSessionRegistry>();
        var (cookies, _) = await SignalRTestApp.SignInAsync(host, "erin");
        var client = await HubClient.ConnectAsync(host, cookies);

        // The client's start completes with the handshake; the server's OnConnectedAsync may still be running.
        var heldWhileOpen = await CountReachesAsync(registry, 1);

        await client.DisposeAsync();

        Assert.Multiple(async () =>
        {
            Assert.That(heldWhileOpen, Is.True, "the registry holds the session while the connection is open");
            Assert.That(await CountReachesZeroAsync(registry), Is.True, "the registry forgot the session");
        });
    }

    [Test]
    public async Task AHubWhoseOnConnectedFails_LetsItsSessionGo()
    {
        await using var host = await SignalRTestApp.StartAsync(Folder.Path);
        var registry = host.Services.GetRequiredService<LiveSessionRegistry>();
        var (cookies, _) = await SignalRTestApp.SignInAsync(host, "erin");

        await using var client = await HubClient.ConnectAsync(host, cookies, path: "/hub?failConnect=1");

        Assert.Multiple(async () =>
        {
            Assert.That(await client.ClosesWithinAsync(TimeSpan.FromSeconds(10)), Is.True);
            Assert.That(await CountReachesZeroAsync(registry), Is.True, "the registry forgot the session");
        });
    }

    private static Task<bool> CountReachesZeroAsync(LiveSessionRegistry registry) => CountReachesAsync(registry, 0);

    private static async Task<bool> CountReachesAsync(LiveSessionRegistry registry, int count)
    {
        for (var waited = 0; waited < 10_000 && registry.Count != count; waited += 20)
        {
            await Task.Delay(20);
        }

        return registry.Count == count;
    }

    /// <summary>A hub connection without a request (as a connection without a session would be) that records its abort.</summary>
    private sealed class TestCallerContext : HubCallerContext
    {
        public bool Aborted { get; private set; }

        public override string ConnectionId => "test-connection";

        public override string? UserIdentifier => null;

        public override ClaimsPrincipal? User => null;

        public override IDictionary<object, object?> Items { get; } = new Dictionary<object, object?>();

        public override IFeatureCollection Features { get; } = new FeatureCollection();

        public override CancellationToken ConnectionAborted => CancellationToken.None;

        public override void Abort() => Aborted = true;
    }
}
