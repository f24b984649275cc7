using System.Diagnostics;
using System.Net;
using System.Security.Claims;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Components.Authorization;
using Microsoft.AspNetCore.Components.Server;
using Microsoft.AspNetCore.Components.Server.Circuits;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SessionMiddleware.Blazor;
using SessionMiddleware.Live;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// Blazor Server circuits tied to their session (<c>AddInteractiveServerComponents().AddServerSideSessions()</c>), without
/// a browser: a real app on Kestrel signs a user in through <c>AddTicketStore()</c>; the circuit's scope is the container's
/// own, with the framework's <see cref="AuthenticationStateProvider"/>, and its dispatcher a queue that reports what the
/// circuit would be told (the whole way through Blazor's hub, in Chromium: BlazorBrowserTests in the functional lane).
/// </summary>
public sealed class BlazorCircuitTests : TempFolderTest
{
    /// <summary>Generous: it proves the end is pushed, not a speed. The real time is printed.</summary>
    private static readonly TimeSpan PushBound = TimeSpan.FromSeconds(10);

    [Test]
    public void AddServerSideSessions_WithoutTheSessionServices_FailsTheAppsStartWithAClearMessage()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        builder.Services.AddRazorComponents().AddInteractiveServerComponents().AddServerSideSessions();
        var app = builder.Build();

        var error = Assert.ThrowsAsync<InvalidOperationException>(() => app.StartAsync());
        Assert.That(error!.Message, Does.Contain("builder.Services.AddServerSideSessions("));
        Assert.DoesNotThrowAsync(async () => await app.DisposeAsync());
    }

    [Test]
    public void TheFilter_KnowsBlazorsOwnHub_ByTheNameItHasInThisFramework()
    {
        // The filter recognises the framework's internal hub by name: a framework that renamed it fails here. (That the
        // global filter reaches it, and the circuit claims the session, is shown in Chromium: BlazorBrowserTests.)
        var componentHub = Type.GetType(CircuitSessionHubFilter.ComponentHubTypeName + ", Microsoft.AspNetCore.Components.Server");
        Assert.That(componentHub, Is.Not.Null, "Blazor Server's hub is where the filter looks for it");
        Assert.That(typeof(Hub).IsAssignableFrom(componentHub), Is.True);
    }

    [Test]
    public async Task TheSessionEnds_TheCircuitReportsTheAnonymousUserAtOnce_ThenIsClosed()
    {
        await using var host = await StartAsync();
        await using var circuit = await OpenCircuitAsync(host, "erin");
        var changed = new TaskCompletionSource<AuthenticationState>(TaskCreationOptions.RunContinuationsAsynchronously);
        circuit.Provider.AuthenticationStateChanged += async task => changed.TrySetResult(await task);
        Assert.That((await circuit.Provider.GetAuthenticationStateAsync()).User.Identity?.Name, Is.EqualTo("erin"));

        var clock = Stopwatch.StartNew();
        Assert.That(await host.Services.GetRequiredService<ISessionManager>().RevokeAllForUserAsync("erin"), Is.EqualTo(1));
        var state = await changed.Task.WaitAsync(PushBound);
        var signedOutAfter = clock.Elapsed;
        var closedBy = await circuit.Dispatcher.Closed.WaitAsync(PushBound);
        TestContext.Progress.WriteLine($"Revoke -> circuit signed out in {signedOutAfter.TotalMilliseconds:0.0} ms, closed in {clock.Elapsed.TotalMilliseconds:0.0} ms (in process).");

        Assert.Multiple(async () =>
        {
            Assert.That(state.User.Identity?.IsAuthenticated, Is.False, "AuthorizeView is told the user is anonymous");
            Assert.That((await circuit.Provider.GetAuthenticationStateAsync()).User.Identity?.IsAuthenticated, Is.False, "and so is anything that asks later");
            Assert.That(closedBy, Is.InstanceOf<CircuitSessionEndedException>(), "the circuit is closed (Blazor closes a circuit whose dispatcher faults)");
            Assert.That(circuit.Dispatcher.SignedOutBeforeClose, Is.True, "the signed-out render is queued before the close");
            Assert.That(host.Logs.GetSnapshot().Any(r => r.Id.Id == 2442), Is.True, "logged as CircuitSessionEnded");
        });
    }

    [Test]
    public async Task TheAppsOwnRevalidatingProvider_IsToldAtOnce_NotAtItsNextRevalidation()
    {
        // As Identity's template registers its provider: a RevalidatingServerAuthenticationStateProvider that would notice
        // the end only at its next check (30 minutes here, and this one never does). The circuit keeps the app's provider.
        await using var host = await StartAsync(s => s.Services.AddScoped<AuthenticationStateProvider, NeverRevalidatingProvider>());
        await using var circuit = await OpenCircuitAsync(host, "erin");
        Assert.That(circuit.Provider, Is.InstanceOf<NeverRevalidatingProvider>());
        var changed = new TaskCompletionSource<AuthenticationState>(TaskCreationOptions.RunContinuationsAsynchronously);
        circuit.Provider.AuthenticationStateChanged += async task => changed.TrySetResult(await task);

        await host.Services.GetRequiredService<ISessionManager>().RevokeAllForUserAsync("erin");

        Assert.That((await changed.Task.WaitAsync(PushBound)).User.Identity?.IsAuthenticated, Is.False);
        Assert.That(await circuit.Dispatcher.Closed.WaitAsync(PushBound), Is.InstanceOf<CircuitSessionEndedException>());
    }

    [Test]
    public async Task AProviderThatCannotBeToldTheUserChanged_IsNotReplaced_TheCircuitIsClosedAllTheSame()
    {
        await using var host = await StartAsync(s => s.Services.AddScoped<AuthenticationStateProvider, FixedUserProvider>());
        await using var circuit = await OpenCircuitAsync(host, "erin");

        await host.Services.GetRequiredService<ISessionManager>().RevokeAllForUserAsync("erin");

        Assert.That(await circuit.Dispatcher.Closed.WaitAsync(PushBound), Is.InstanceOf<CircuitSessionEndedException>());
        Assert.That(host.Logs.GetSnapshot().Any(r => r.Id.Id == 2443 && r.Message.Contains(nameof(FixedUserProvider), StringComparison.Ordinal)), Is.True,
            "the app is told its provider could not be signed out");
    }

    [Test]
    public async Task TheSessionIdIsRenewedForTheSameUser_TheCircuitFollows_ASignInAsAnotherUserEndsIt()
    {
        await using var host = await StartAsync();
        var cookies = await SignInAsync(host, "erin");
        await using var circuit = OpenCircuit(host, await HoldAsync(host, cookies), "erin");
        var browser = host.CreateBrowser(cookies);
        var firstId = await browser.GetTextAsync("/id");

        await browser.GetTextAsync("/regenerate");
        var renewedId = await browser.GetTextAsync("/id");
        var afterRenewal = circuit.Dispatcher.Closed.IsCompleted;
        var followed = circuit.Scope.ServiceProvider.GetRequiredService<CircuitSession>().SessionId;
        await browser.GetTextAsync("/signin?user=frank");

        Assert.Multiple(async () =>
        {
            Assert.That(afterRenewal, Is.False, "a new session ID for the same user keeps the circuit");
            Assert.That(renewedId, Is.Not.EqualTo(firstId), "RegenerateId renewed the session ID");
            Assert.That(followed, Is.EqualTo(renewedId), "the circuit follows the renewed session");
            Assert.That(await circuit.Dispatcher.Closed.WaitAsync(PushBound), Is.InstanceOf<CircuitSessionEndedException>(), "another user's sign-in ends erin's circuit");
            Assert.That((await circuit.Provider.GetAuthenticationStateAsync()).User.Identity?.IsAuthenticated, Is.False);
        });
    }

    [Test]
    public async Task ASessionThatEndedBeforeItsCircuitOpened_SignsTheCircuitOutAndClosesItAsItOpens()
    {
        await using var host = await StartAsync();
        var cookies = await SignInAsync(host, "erin");
        var lease = await HoldAsync(host, cookies);
        await host.Services.GetRequiredService<ISessionManager>().RevokeAllForUserAsync("erin");

        await using var circuit = OpenCircuit(host, lease, "erin");

        Assert.That(await circuit.Dispatcher.Closed.WaitAsync(PushBound), Is.InstanceOf<CircuitSessionEndedException>());
        Assert.That((await circuit.Provider.GetAuthenticationStateAsync()).User.Identity?.IsAuthenticated, Is.False);
    }

    [Test]
    public async Task AfterTheEnd_NoInboundEventRuns_AndAReconnectionIsRefused()
    {
        await using var host = await StartAsync();
        await using var circuit = await OpenCircuitAsync(host, "erin");
        var handler = circuit.Handler;
        var ran = 0;
        var inbound = handler.CreateInboundActivityHandler(_ => { ran++; return Task.CompletedTask; });

        await inbound(null!);
        Assert.DoesNotThrowAsync(() => handler.OnConnectionUpAsync(null!, CancellationToken.None), "a live session's circuit reconnects");
        await host.Services.GetRequiredService<ISessionManager>().RevokeAllForUserAsync("erin");
        await inbound(null!);

        Assert.Multiple(() =>
        {
            Assert.That(ran, Is.EqualTo(1), "the event after the end did not run");
            Assert.ThrowsAsync<CircuitSessionEndedException>(() => handler.OnConnectionUpAsync(null!, CancellationToken.None), "no reconnection after the end");
        });
    }

    [Test]
    public async Task CircuitActivity_TouchesTheSession_OncePerTouchInterval()
    {
        await using var host = await StartAsync();
        await using var circuit = await OpenCircuitAsync(host, "erin");
        var inbound = circuit.Handler.CreateInboundActivityHandler(_ => Task.CompletedTask);
        var manager = host.Services.GetRequiredService<ISessionManager>();
        var before = (await manager.ListForUserAsync("erin")).Single().LastAccessAt;

        host.Time.Advance(TimeSpan.FromMinutes(5));
        await inbound(null!);
        var after = (await manager.ListForUserAsync("erin")).Single().LastAccessAt;
        host.Time.Advance(TimeSpan.FromSeconds(10));
        await inbound(null!);
        var soonAfter = (await manager.ListForUserAsync("erin")).Single().LastAccessAt;

        Assert.Multiple(() =>
        {
            Assert.That(after, Is.EqualTo(before + TimeSpan.FromMinutes(5)), "a user active only in the circuit is not idled out");
            Assert.That(soonAfter, Is.EqualTo(after), "within TouchInterval, activity writes nothing");
        });
    }

    [Test]
    public async Task TheCircuitCloses_ItsHoldOnTheSessionIsReleased()
    {
        await using var host = await StartAsync();
        var registry = host.Services.GetRequiredService<LiveSessionRegistry>();
        var circuit = await OpenCircuitAsync(host, "erin");
        Assert.That(registry.Count, Is.EqualTo(1), "the circuit holds its session");

        await circuit.DisposeAsync();

        Assert.That(registry.Count, Is.Zero, "the circuit's scope released it");
    }

    [Test]
    public async Task ASlot_GivesItsSessionToOneCircuit_AndReleasesItWhenNoCircuitClaimedIt()
    {
        await using var host = await StartAsync();
        var cookies = await SignInAsync(host, "erin");
        var claimed = new CircuitSessionSlot(await HoldAsync(host, cookies));
        var unclaimed = new CircuitSessionSlot(await HoldAsync(host, cookies));
        using var lease = claimed.Claim();
        Assert.That(claimed.Claim(), Is.Null, "one circuit per slot");
        claimed.Close();
        unclaimed.Close();

        Assert.Multiple(() =>
        {
            Assert.That(lease, Is.Not.Null);
            Assert.That(unclaimed.Claim(), Is.Null, "nothing to claim after the connection closed");
            Assert.That(lease!.Session.Holders, Is.EqualTo(1), "the claimed lease is the circuit's; the unclaimed one was released");
        });
    }

    private Task<SessionTestHost> StartAsync(Action<IServerSideSessionsBuilder>? services = null) =>
        AuthTestApp.StartAsync(Folder.Path, services: s =>
        {
            s.Services.AddRazorComponents().AddInteractiveServerComponents().AddServerSideSessions();
            services?.Invoke(s);
        });

    private static async Task<CookieContainer> SignInAsync(SessionTestHost host, string user)
    {
        var cookies = new CookieContainer();
        await host.CreateBrowser(cookies).GetTextAsync($"/signin?user={user}");
        return cookies;
    }

    /// <summary>The lease a hub connection opened by this browser gets (the request's cookies, its session loaded).</summary>
    private static async Task<LiveSessionLease> HoldAsync(SessionTestHost host, CookieContainer cookies)
    {
        var request = new DefaultHttpContext { RequestServices = host.Services };
        request.Request.Headers.Cookie = cookies.GetCookieHeader(host.BaseAddress);
        var lease = await host.Services.GetRequiredService<LiveSessionConnections>().HoldAsync(request, CancellationToken.None);
        Assert.That(lease, Is.Not.Null, "the browser has a stored session");
        return lease!;
    }

    private static async Task<TestCircuit> OpenCircuitAsync(SessionTestHost host, string user) =>
        OpenCircuit(host, await HoldAsync(host, await SignInAsync(host, user)), user);

    /// <summary>A circuit's scope created as Blazor creates it, during a call of its hub connection (the slot current).</summary>
    private static TestCircuit OpenCircuit(SessionTestHost host, LiveSessionLease lease, string user)
    {
        var scope = host.Services.CreateAsyncScope();
        CircuitSessionSlot.Current = new CircuitSessionSlot(lease);
        SessionCircuitHandler handler;
        try
        {
            handler = scope.ServiceProvider.GetServices<CircuitHandler>().OfType<SessionCircuitHandler>().Single();
        }
        finally
        {
            CircuitSessionSlot.Current = null;
        }

        var provider = scope.ServiceProvider.GetRequiredService<AuthenticationStateProvider>();
        var principal = new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Name, user)], "Cookies"));
        (provider as IHostEnvironmentAuthenticationStateProvider)?.SetAuthenticationState(Task.FromResult(new AuthenticationState(principal)));
        var dispatcher = new TestDispatcher(provider);
        scope.ServiceProvider.GetRequiredService<CircuitSession>().Open("test-circuit", dispatcher);
        return new TestCircuit(scope, handler, provider, dispatcher);
    }

    private sealed class NeverRevalidatingProvider(ILoggerFactory loggerFactory) : RevalidatingServerAuthenticationStateProvider(loggerFactory)
    {
        protected override TimeSpan RevalidationInterval => TimeSpan.FromMinutes(30);

        protected override Task<bool> ValidateAuthenticationStateAsync(AuthenticationState authenticationState, CancellationToken cancellationToken) =>
            Task.FromResult(true);
    }

    private sealed class FixedUserProvider : AuthenticationStateProvider
    {
        public override Task<AuthenticationState> GetAuthenticationStateAsync() =>
            Task.FromResult(new AuthenticationState(new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Name, "erin")], "Custom"))));
    }

    private sealed record TestCircuit(AsyncServiceScope Scope, SessionCircuitHandler Handler, AuthenticationStateProvider Provider, TestDispatcher Dispatcher) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => Scope.DisposeAsync();
    }

    /// <summary>
    /// A circuit's dispatcher as far as the session sees it: posted work runs in order, one item at a time; an exception
    /// from one is what Blazor treats as fatal to the circuit (it closes it), so it completes <see cref="Closed"/>.
    /// </summary>
    private sealed class TestDispatcher : SynchronizationContext
    {
        private readonly Channel<(SendOrPostCallback Callback, object? State)> _work = Channel.CreateUnbounded<(SendOrPostCallback, object?)>();
        private readonly TaskCompletionSource<Exception> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly AuthenticationStateProvider _provider;

        public TestDispatcher(AuthenticationStateProvider provider)
        {
            _provider = provider;
            _ = Task.Run(RunAsync);
        }

        public Task<Exception> Closed => _closed.Task;

        /// <summary>Whether the circuit's user was anonymous when it was closed.</summary>
        public bool SignedOutBeforeClose { get; private set; }

        public override void Post(SendOrPostCallback d, object? state) => _work.Writer.TryWrite((d, state));

        private async Task RunAsync()
        {
            await foreach (var (callback, state) in _work.Reader.ReadAllAsync())
            {
                SetSynchronizationContext(this);
                try
                {
                    callback(state);
                }
                catch (Exception ex) when (!_closed.Task.IsCompleted)
                {
                    // The first fault closes the circuit: nothing after it runs in Blazor.
                    SignedOutBeforeClose = (await _provider.GetAuthenticationStateAsync()).User.Identity?.IsAuthenticated == false;
                    _closed.TrySetResult(ex);
                }
                catch (Exception)
                {
                }
            }
        }
    }
}
