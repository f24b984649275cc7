using System.Diagnostics;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// <c>AddSignalR().AddServerSideSessions()</c>: a hub connection, real SignalR client over real Kestrel, closes when the
/// session that opened it ends, for every reason, and runs no hub method after the end; hub invocations keep the
/// session alive; a renewal of the same user keeps it open.
/// </summary>
public sealed class SignalRTests : TempFolderTest
{
    /// <summary>"Promptly": proves the end is pushed (not found by a revalidation minutes later); the latency is measured in <see cref="SignalRLatencyTests"/>.</summary>
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);

    /// <summary>How many calls have run before the racing revoke is sent.</summary>
    private const int Racing = 200;

    [TestCase(HttpTransportType.WebSockets, false)]
    [TestCase(HttpTransportType.WebSockets, true)]
    [TestCase(HttpTransportType.LongPolling, false)]
    [TestCase(HttpTransportType.LongPolling, true)]
    public async Task ARevokeFromAnotherClient_ClosesTheSignedInConnection(HttpTransportType transport, bool allOfTheUser)
    {
        await using var host = await SignalRTestApp.StartAsync(Folder.Path);
        var (cookies, sessionId) = await SignalRTestApp.SignInAsync(host, "erin");
        await using var client = await HubClient.ConnectAsync(host, cookies, transport);
        Assert.That(await client.Connection.InvokeAsync<string>("Whoami"), Is.EqualTo("erin"));

        var manager = host.Services.GetRequiredService<ISessionManager>();
        var watch = Stopwatch.StartNew();
        var revoked = allOfTheUser ? await manager.RevokeAllForUserAsync("erin") == 1 : await manager.RevokeAsync(sessionId);
        var closed = await client.ClosesWithinAsync(Prompt);
        TestContext.Progress.WriteLine($"{transport}: revoke → Closed in {watch.Elapsed.TotalMilliseconds:F1} ms");

        Assert.Multiple(() =>
        {
            Assert.That(revoked, Is.True);
            Assert.That(closed, Is.True, "Closed fired");
            Assert.That(client.Connection.State, Is.EqualTo(HubConnectionState.Disconnected));
            Assert.That(host.Logs.GetSnapshot().Count(r => r.Id.Id == 2421), Is.EqualTo(1), "logged: closed because the session ended");
        });
    }

    [TestCase(false)]
    [TestCase(true)]
    public async Task AHubCallRacingTheRevoke_NoMethodStartsAfterRevokeReturned(bool slowStart)
    {
        // slowStart: an app filter sleeps a millisecond between the session's check and the method body.
        await using var host = await SignalRTestApp.StartAsync(Folder.Path, slowStart: slowStart);
        var recorder = host.Services.GetRequiredService<HubRecorder>();
        var (cookies, sessionId) = await SignalRTestApp.SignInAsync(host, "erin");
        await using var client = await HubClient.ConnectAsync(host, cookies);

        // Calls pipelined without waiting for their results, so the server holds many not started yet when the revoke lands.
        using var stop = new CancellationTokenSource();
        var pump = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested && client.Connection.State == HubConnectionState.Connected)
            {
                try
                {
                    await client.Connection.SendAsync("Tick");
                }
                catch (Exception ex) when (ex is InvalidOperationException or OperationCanceledException or System.IO.IOException or System.Net.WebSockets.WebSocketException)
                {
                    return;
                }
            }
        });
        var waited = Stopwatch.StartNew();
        while (recorder.Ticks < Racing && waited.Elapsed < Prompt)
        {
            await Task.Delay(5);
        }

        var ticksBefore = recorder.Ticks;
        Assert.That(await host.Services.GetRequiredService<ISessionManager>().RevokeAsync(sessionId), Is.True);
        var revokeReturned = recorder.Next();
        var closed = await client.ClosesWithinAsync(Prompt);
        await stop.CancelAsync();
        await pump;

        Assert.Multiple(() =>
        {
            Assert.That(ticksBefore, Is.GreaterThanOrEqualTo(Racing), "the calls were running when the revoke came");
            Assert.That(closed, Is.True);
            Assert.That(recorder.LastTickStart, Is.LessThan(revokeReturned), "no hub method body started after RevokeAsync returned");
        });
    }

    [Test]
    public async Task IdleExpiry_ClosesTheConnection()
    {
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
        await using var host = await SignalRTestApp.StartAsync(Folder.Path, time);
        var (cookies, _) = await SignalRTestApp.SignInAsync(host, "erin");
        await using var client = await HubClient.ConnectAsync(host, cookies);

        time.Advance(TimeSpan.FromMinutes(20) + TimeSpan.FromSeconds(1));
        var closed = await client.ClosesWhileTheClockTicksAsync(time, Prompt);

        Assert.Multiple(() =>
        {
            Assert.That(closed, Is.True, "closed by the registry's expiry check, on the injected clock");
            Assert.That(host.Logs.GetSnapshot().Count(r => r.Id.Id == 2421), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task AUserActiveOnlyOverTheHub_IsNotIdledOut()
    {
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
        await using var host = await SignalRTestApp.StartAsync(Folder.Path, time);
        var (cookies, sessionId) = await SignalRTestApp.SignInAsync(host, "erin");
        await using var client = await HubClient.ConnectAsync(host, cookies);

        // 50 minutes in steps of 8 (IdleTimeout 20), a hub call each step and no page request.
        var answers = new List<string>();
        for (var step = 0; step < 6; step++)
        {
            time.Advance(TimeSpan.FromMinutes(8));
            await Task.Delay(50);
            answers.Add(await client.Connection.InvokeAsync<string>("Whoami"));
        }

        // A few more ticks of the expiry check: none closes the connection.
        var closed = await client.ClosesWithinAsync(TimeSpan.Zero) || await client.ClosesWhileTheClockTicksAsync(time, TimeSpan.FromMilliseconds(500));
        var browser = host.CreateBrowser(cookies);
        Assert.Multiple(async () =>
        {
            Assert.That(answers, Is.All.EqualTo("erin"));
            Assert.That(closed, Is.False, "still open");
            Assert.That(client.Connection.State, Is.EqualTo(HubConnectionState.Connected));
            Assert.That(await browser.GetTextAsync("/id"), Is.EqualTo(sessionId), "the session's row still loads");
            Assert.That(await browser.GetTextAsync("/whoami"), Is.EqualTo("erin"));
        });
    }

    [Test]
    public async Task AbsoluteTimeout_ClosesTheConnectionOfAUserActiveOverTheHub()
    {
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
        await using var host = await SignalRTestApp.StartAsync(Folder.Path, time, o => o.AbsoluteTimeout = TimeSpan.FromHours(1));
        var (cookies, _) = await SignalRTestApp.SignInAsync(host, "erin");
        await using var client = await HubClient.ConnectAsync(host, cookies);
        for (var step = 0; step < 7; step++)
        {
            time.Advance(TimeSpan.FromMinutes(8));
            Assert.That(await client.Connection.InvokeAsync<string>("Whoami"), Is.EqualTo("erin"), $"at {(step + 1) * 8} minutes");
        }

        time.Advance(TimeSpan.FromMinutes(5));

        Assert.That(await client.ClosesWhileTheClockTicksAsync(time, Prompt), Is.True, "closed past the absolute limit, active or not");
    }

    [Test]
    public async Task AHubMethodThatRevokesItsOwnSession_ClosesItsConnection()
    {
        await using var host = await SignalRTestApp.StartAsync(Folder.Path);
        var (cookies, sessionId) = await SignalRTestApp.SignInAsync(host, "erin");
        await using var client = await HubClient.ConnectAsync(host, cookies);

        _ = client.Connection.InvokeAsync<bool>("RevokeMine");

        Assert.Multiple(async () =>
        {
            Assert.That(await client.ClosesWithinAsync(Prompt), Is.True);
            Assert.That(await host.Services.GetRequiredService<ISessionManager>().RevokeAsync(sessionId), Is.False, "revoked");
        });
    }

    [TestCase("/signout")]
    [TestCase("/abandon")]
    [TestCase("/signin?user=mallory")]
    public async Task AnEndOnTheBrowser_ClosesItsConnection(string request)
    {
        // Sign-out through the ticket store, Abandon, and another user signing in on the browser (a renewal to another user).
        await using var host = await SignalRTestApp.StartAsync(Folder.Path);
        var (cookies, _) = await SignalRTestApp.SignInAsync(host, "erin");
        await using var client = await HubClient.ConnectAsync(host, cookies);

        await host.CreateBrowser(cookies).GetTextAsync(request);

        Assert.That(await client.ClosesWithinAsync(Prompt), Is.True);
    }

    [Test]
    public async Task RegenerateId_KeepsTheConnection_WhichFollowsTheNewId()
    {
        await using var host = await SignalRTestApp.StartAsync(Folder.Path);
        var (cookies, oldId) = await SignalRTestApp.SignInAsync(host, "erin");
        await using var client = await HubClient.ConnectAsync(host, cookies);
        var browser = host.CreateBrowser(cookies);

        var newId = await browser.GetTextAsync("/regenerate");
        var closedByRenewal = await client.ClosesWithinAsync(TimeSpan.FromMilliseconds(500));
        var whoami = await client.Connection.InvokeAsync<string>("Whoami");
        var revokedNew = await host.Services.GetRequiredService<ISessionManager>().RevokeAsync(newId);

        Assert.Multiple(async () =>
        {
            Assert.That(newId, Is.Not.EqualTo(oldId));
            Assert.That(closedByRenewal, Is.False, "open after the renewal");
            Assert.That(whoami, Is.EqualTo("erin"));
            Assert.That(revokedNew, Is.True);
            Assert.That(await client.ClosesWithinAsync(Prompt), Is.True, "a revoke of the new ID closes it");
        });
    }

    [Test]
    public async Task ASessionThatEndsAsTheConnectionIsMade_IsClosedAtOnce_BeforeTheHubSeesIt()
    {
        await using var host = await SignalRTestApp.StartAsync(Folder.Path);
        var recorder = host.Services.GetRequiredService<HubRecorder>();
        var (cookies, _) = await SignalRTestApp.SignInAsync(host, "erin");

        await using var client = await HubClient.ConnectAsync(host, cookies, path: "/hub?revokeFirst=1");

        Assert.Multiple(async () =>
        {
            Assert.That(await client.ClosesWithinAsync(Prompt), Is.True);
            Assert.That(recorder.Connects, Is.Zero, "the hub's OnConnectedAsync did not run");
            Assert.That(host.Logs.GetSnapshot().Count(r => r.Id.Id == 2421), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task ByDefault_AConnectionWithoutASessionIsAllowed()
    {
        await using var host = await SignalRTestApp.StartAsync(Folder.Path);
        await using var client = await HubClient.ConnectAsync(host, cookies: null);

        Assert.Multiple(async () =>
        {
            Assert.That(await client.Connection.InvokeAsync<string>("Whoami"), Is.EqualTo("anonymous"));
            Assert.That(await client.ClosesWithinAsync(TimeSpan.FromMilliseconds(200)), Is.False);
        });
    }

    [TestCase(HttpTransportType.WebSockets)]
    [TestCase(HttpTransportType.LongPolling)]
    public async Task RequireSession_RefusesAConnectionWithoutASession_AndLetsASignedInOneIn(HttpTransportType transport)
    {
        await using var host = await SignalRTestApp.StartAsync(Folder.Path, hub: o => o.RequireSession = true);
        await using var anonymous = await HubClient.ConnectAsync(host, cookies: null, transport);
        var refused = await anonymous.ClosesWithinAsync(Prompt);
        var (cookies, _) = await SignalRTestApp.SignInAsync(host, "erin");
        await using var signedIn = await HubClient.ConnectAsync(host, cookies, transport);

        Assert.Multiple(async () =>
        {
            Assert.That(refused, Is.True, "closed at once");
            Assert.That(host.Logs.GetSnapshot().Count(r => r.Id.Id == 2422), Is.EqualTo(1), "logged: refused without a session");
            Assert.That(await signedIn.Connection.InvokeAsync<string>("Whoami"), Is.EqualTo("erin"));
        });
    }

    [Test]
    public async Task RequireSession_AConnectionWithoutASession_RunsNoHubMethod()
    {
        // Calls the client sends before it sees the close are refused, not run.
        await using var host = await SignalRTestApp.StartAsync(Folder.Path, hub: o => o.RequireSession = true);
        var recorder = host.Services.GetRequiredService<HubRecorder>();
        await using var anonymous = await HubClient.ConnectAsync(host, cookies: null);
        for (var i = 0; i < 20 && anonymous.Connection.State == HubConnectionState.Connected; i++)
        {
            try
            {
                await anonymous.Connection.SendAsync("Tick");
            }
            catch (InvalidOperationException)
            {
                break;
            }
        }

        Assert.Multiple(async () =>
        {
            Assert.That(await anonymous.ClosesWithinAsync(Prompt), Is.True);
            Assert.That(recorder.Ticks, Is.Zero);
        });
    }

    [Test]
    public async Task WithoutTheSessionServices_TheAppFailsToStart_NamingTheCall()
    {
        var builder = Microsoft.AspNetCore.Builder.WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddSignalR().AddServerSideSessions();
        await using var app = builder.Build();

        var error = Assert.ThrowsAsync<InvalidOperationException>(() => app.StartAsync());

        Assert.That(error!.Message, Does.Contain("AddServerSideSessions("));
    }
}
