using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// The database unreachable while hub connections are open: they stay open and their hub methods run, the touches and
/// checks that fail are logged, and once the database is back a session found ended closes its connection.
/// </summary>
public sealed class SignalRStoreOutageTests : TempFolderTest
{
    [Test]
    public async Task TheDatabaseDown_ConnectionsStayOpen_AndAnEndFoundOnceItIsBack_ClosesThem()
    {
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
        FaultyStore store = null!;
        await using var host = await SignalRTestApp.StartAsync(
            Folder.Path,
            time,
            sessions: s => s.UseStore(sp => store = new FaultyStore(SessionTestHost.RealStore(sp))));
        var (cookies, _) = await SignalRTestApp.SignInAsync(host, "erin");
        await using var client = await HubClient.ConnectAsync(host, cookies);

        // The client's start completes with the handshake; the server links the connection to its session (its last
        // activity: now) in OnConnectedAsync, which may still be running. Linked after the clock moved, no touch is due.
        var registry = host.Services.GetRequiredService<SessionMiddleware.Live.LiveSessionRegistry>();
        for (var waited = 0; waited < 10_000 && registry.Count == 0; waited += 20)
        {
            await Task.Delay(20);
        }

        Assert.That(registry.Count, Is.EqualTo(1), "the server linked the connection");

        // Every read and the cleaner's deletes fail (the cleaner would otherwise end the expired session meanwhile).
        static Exception Unreachable() => new TimeoutException("the database is unreachable");
        store.OnLoad = store.OnListExpired = store.OnDeleteExpired = Unreachable;
        time.Advance(TimeSpan.FromMinutes(2));
        var duringOutage = await client.Connection.InvokeAsync<string>("Whoami");
        time.Advance(TimeSpan.FromMinutes(20));
        var closedDuringOutage = await client.ClosesWhileTheClockTicksAsync(time, TimeSpan.FromSeconds(1));
        var logs = host.Logs.GetSnapshot();

        store.OnLoad = store.OnListExpired = store.OnDeleteExpired = null;
        var closedOnceBack = await client.ClosesWhileTheClockTicksAsync(time, TimeSpan.FromSeconds(10));

        Assert.Multiple(() =>
        {
            Assert.That(duringOutage, Is.EqualTo("erin"), "hub methods run while the database is down");
            Assert.That(logs.Count(r => r.Id.Id == 2403), Is.EqualTo(1), "the failed touch is logged");
            Assert.That(logs.Count(r => r.Id.Id == 2404), Is.GreaterThanOrEqualTo(1), "the failed expiry checks are logged");
            Assert.That(closedDuringOutage, Is.False, "open while the session cannot be checked");
            Assert.That(closedOnceBack, Is.True, "the expired session is found ended once the database is back");
        });
    }
}
