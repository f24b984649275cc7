using System.Diagnostics;
using System.Globalization;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using SessionMiddleware.Live;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// What live connections cost at scale (docs/live-connections.md): 10,000 signed-in SignalR WebSocket connections on one
/// server over SQLite — the memory this feature adds per connection, the queries it sends while idle, and revoke →
/// Closed under that load. Explicit (minutes, and most of the machine): run it with
/// <c>dotnet test SessionMiddleware.Tests -c Release --filter FullyQualifiedName~LiveConnectionCostTests</c>
/// (<c>SESSIONMIDDLEWARE_CONNECTIONS</c> sets another count).
/// </summary>
[Explicit("A measurement: minutes, and most of the machine.")]
[Category("Measurement")]
public sealed class LiveConnectionCostTests : TempFolderTest
{
    private const int Revokes = 100;

    [Test]
    public async Task TenThousandConnections_MemoryPerConnection_IdleQueries_AndRevokeLatency()
    {
        var count = int.TryParse(Environment.GetEnvironmentVariable("SESSIONMIDDLEWARE_CONNECTIONS"), out var n) ? n : 10_000;
        await using var host = await SignalRTestApp.StartAsync(Folder.Path, configure: o => o.NewSessionLimit = 0);
        var registry = host.Services.GetRequiredService<LiveSessionRegistry>();
        var monitor = host.Services.GetServices<IHostedService>().OfType<LiveSessionMonitor>().Single();
        var clients = new List<(HubClient Client, string SessionId)>(count);
        try
        {
            var opening = Stopwatch.StartNew();
            using var gate = new SemaphoreSlim(32);
            var opened = await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
            {
                await gate.WaitAsync();
                try
                {
                    var (cookies, sessionId) = await SignalRTestApp.SignInAsync(host, "user" + i.ToString(CultureInfo.InvariantCulture));
                    return (await HubClient.ConnectAsync(host, cookies), sessionId);
                }
                finally
                {
                    gate.Release();
                }
            }));
            clients.AddRange(opened);
            Progress($"{count} signed-in WebSocket connections opened in {opening.Elapsed.TotalSeconds:F0} s; sessions held: {registry.Count}");

            // Idle: what the feature asks of the database while nothing happens.
            var reads = monitor.FeedReads;
            var checks = registry.StoreChecks;
            var idle = Stopwatch.StartNew();
            await Task.Delay(TimeSpan.FromSeconds(10));
            var seconds = idle.Elapsed.TotalSeconds;
            Progress($"idle for {seconds:F1} s: {(monitor.FeedReads - reads) / seconds:F1} change-table reads/s, {(registry.StoreChecks - checks) / seconds:F1} session checks/s");

            // Revoke → Closed with every other connection still open.
            var manager = host.Services.GetRequiredService<ISessionManager>();
            var latencies = new List<double>(Revokes);
            foreach (var (client, sessionId) in clients.Take(Revokes))
            {
                var watch = Stopwatch.StartNew();
                Assert.That(await manager.RevokeAsync(sessionId), Is.True);
                Assert.That(await client.ClosesWithinAsync(TimeSpan.FromSeconds(10)), Is.True);
                latencies.Add(watch.Elapsed.TotalMilliseconds);
            }

            latencies.Sort();
            Progress($"revoke → Closed among {count} open connections, {Revokes} revokes: p50 {Percentile(latencies, 0.50):F1} ms, p99 {Percentile(latencies, 0.99):F1} ms, max {latencies[^1]:F1} ms");
            Assert.That(registry.Count, Is.EqualTo(count - Revokes));
        }
        finally
        {
            foreach (var (client, _) in clients)
            {
                await client.DisposeAsync();
            }
        }
    }

    [Test]
    public async Task TheFeaturesOwnMemory_PerHeldConnection()
    {
        // The state this feature keeps per connection, alone: a held session with its token, the lease, and the
        // registration that closes the connection (what the hub filter adds; SignalR's own connection state is not counted).
        const int Count = 10_000;
        await using var host = await SessionTestHost.StartAsync(Folder.Path);
        var registry = host.Services.GetRequiredService<LiveSessionRegistry>();
        var keys = Enumerable.Range(0, Count).Select(_ => System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)).ToArray();
        var expires = DateTimeOffset.UtcNow.AddHours(1);
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var held = new List<(LiveSessionLease Lease, CancellationTokenRegistration Close)>(Count);
        foreach (var key in keys)
        {
            var lease = registry.Hold(key, "user", expires);
            held.Add((lease, lease.Ended.Register(static state => ((StrongBox<bool>)state!).Value = true, new StrongBox<bool>())));
        }

        var after = GC.GetTotalMemory(forceFullCollection: true);
        Progress($"memory this feature adds per held connection: {(after - before) / (double)Count:F0} bytes ({Count} held)");
        Assert.That(registry.Count, Is.EqualTo(Count));
        GC.KeepAlive(held);
    }

    private static void Progress(string line) => TestContext.Progress.WriteLine(line);

    private static double Percentile(List<double> sorted, double p) =>
        sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];

    private sealed class StrongBox<T>
    {
        public T? Value;
    }
}
