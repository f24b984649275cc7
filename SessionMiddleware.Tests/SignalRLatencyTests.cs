using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// Measures revoke → <c>Closed</c> on this server: 100 signed-in WebSocket connections, revoked one at a time, the
/// latency of each printed as p50/p99/max (asserting only a generous bound).
/// </summary>
[Category("Measurement")]
public sealed class SignalRLatencyTests : TempFolderTest
{
    private const int Connections = 100;

    [Test]
    public async Task RevokeToClosed_100WebSocketConnections_OneAtATime()
    {
        await using var host = await SignalRTestApp.StartAsync(Folder.Path);
        var manager = host.Services.GetRequiredService<ISessionManager>();
        var clients = new List<(HubClient Client, string SessionId)>(Connections);
        try
        {
            for (var i = 0; i < Connections; i++)
            {
                var (cookies, sessionId) = await SignalRTestApp.SignInAsync(host, "user" + i.ToString(CultureInfo.InvariantCulture));
                clients.Add((await HubClient.ConnectAsync(host, cookies), sessionId));
            }

            var latencies = new List<double>(Connections);
            foreach (var (client, sessionId) in clients)
            {
                var watch = Stopwatch.StartNew();
                Assert.That(await manager.RevokeAsync(sessionId), Is.True);
                Assert.That(await client.ClosesWithinAsync(TimeSpan.FromSeconds(10)), Is.True, "closed within the bound");
                latencies.Add(watch.Elapsed.TotalMilliseconds);
            }

            latencies.Sort();
            TestContext.Progress.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"SignalR revoke → Closed, {Connections} WebSocket connections on one server (SQLite): p50 {Percentile(latencies, 0.50):F1} ms, p99 {Percentile(latencies, 0.99):F1} ms, max {latencies[^1]:F1} ms"));
            Assert.That(latencies[^1], Is.LessThan(10_000));
        }
        finally
        {
            foreach (var (client, _) in clients)
            {
                await client.DisposeAsync();
            }
        }
    }

    private static double Percentile(List<double> sorted, double p) =>
        sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];
}
