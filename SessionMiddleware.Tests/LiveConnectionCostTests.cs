using System.Diagnostics;
using System.Globalization;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
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
        // The server is a child process (the test host with --live), the clients are here: each process may hold 20,000
        // descriptors on this machine, and 10,000 connections need that many sockets on each side.
        var count = int.TryParse(Environment.GetEnvironmentVariable("SESSIONMIDDLEWARE_CONNECTIONS"), out var n) ? n : 10_000;
        var without = await MeasureAsync("off", count, revoke: false);
        var with = await MeasureAsync("on", count, revoke: true);
        Progress($"server memory with {count} connections: {with.Memory / 1e6:F0} MB with the hub filter, {without.Memory / 1e6:F0} MB without: {(with.Memory - without.Memory) / (double)count:F0} bytes per connection added by this feature");
    }

    private async Task<(long Memory, int Held)> MeasureAsync(string mode, int count, bool revoke)
    {
        var db = Folder.File($"live-{mode}.db");
        await using var server = await ChildHost.StartAsync(db, Folder.File("keys"), null, "--live", mode);
        using var http = new HttpClient(new HttpClientHandler { UseCookies = false }) { Timeout = TimeSpan.FromMinutes(2) };
        var clients = new List<(HubClient Client, string SessionId)>(count);
        try
        {
            var opening = Stopwatch.StartNew();
            using var gate = new SemaphoreSlim(32);
            clients.AddRange(await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
            {
                await gate.WaitAsync();
                try
                {
                    var cookies = new CookieContainer();
                    using var handler = new HttpClientHandler { CookieContainer = cookies };
                    using var browser = new HttpClient(handler) { BaseAddress = server.BaseAddress };
                    var sessionId = await browser.GetStringAsync("/signin?user=user" + i.ToString(CultureInfo.InvariantCulture));
                    return (await HubClient.ConnectAsync(new Uri(server.BaseAddress, "/hub"), cookies), sessionId);
                }
                finally
                {
                    gate.Release();
                }
            })));

            var stats = await StatsAsync(http, server);
            Progress($"[{mode}] {count} signed-in WebSocket connections opened in {opening.Elapsed.TotalSeconds:F0} s; sessions held: {stats.Held}; server managed memory {stats.Memory / 1e6:F0} MB");
            if (!revoke)
            {
                return (stats.Memory, stats.Held);
            }

            // Idle: what the feature asks of the database while nothing happens.
            var idle = Stopwatch.StartNew();
            await Task.Delay(TimeSpan.FromSeconds(10));
            var after = await StatsAsync(http, server);
            var seconds = idle.Elapsed.TotalSeconds;
            Progress($"[{mode}] idle for {seconds:F1} s: {(after.Reads - stats.Reads) / seconds:F1} changes-table reads/s, {(after.Checks - stats.Checks) / seconds:F1} session loads/s");

            // Revoke → Closed with every other connection still open.
            var latencies = new List<double>(Revokes);
            foreach (var (client, sessionId) in clients.Take(Revokes))
            {
                var watch = Stopwatch.StartNew();
                Assert.That(await http.GetStringAsync(new Uri(server.BaseAddress, "/revoke?id=" + sessionId)), Is.EqualTo("revoked"));
                Assert.That(await client.ClosesWithinAsync(TimeSpan.FromSeconds(10)), Is.True);
                latencies.Add(watch.Elapsed.TotalMilliseconds);
            }

            latencies.Sort();
            Progress($"[{mode}] revoke → Closed among {count} open connections, {Revokes} revokes: p50 {Percentile(latencies, 0.50):F1} ms, p99 {Percentile(latencies, 0.99):F1} ms, max {latencies[^1]:F1} ms");
            Assert.That((await StatsAsync(http, server)).Held, Is.EqualTo(count - Revokes));
            return (stats.Memory, stats.Held);
        }
        finally
        {
            foreach (var (client, _) in clients)
            {
                await client.DisposeAsync();
            }
        }
    }

    private static async Task<(int Held, long Reads, long Checks, long Memory)> StatsAsync(HttpClient http, ChildHost server)
    {
        var parts = (await http.GetStringAsync(new Uri(server.BaseAddress, "/stats"))).Split(' ');
        return (int.Parse(parts[0], CultureInfo.InvariantCulture), long.Parse(parts[1], CultureInfo.InvariantCulture),
            long.Parse(parts[2], CultureInfo.InvariantCulture), long.Parse(parts[3], CultureInfo.InvariantCulture));
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
        var expires = host.Time.GetUtcNow().AddHours(1);

        // Stored sessions: the registry checks what it holds against the store once its feed starts.
        var store = host.Services.GetRequiredService<IServerSideSessionStore>();
        foreach (var chunk in keys.Chunk(100))
        {
            await Task.WhenAll(chunk.Select(key => store.CreateAsync(new NewSession(key, [1], "user", null, null))));
        }

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
