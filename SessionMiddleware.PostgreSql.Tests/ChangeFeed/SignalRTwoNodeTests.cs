using System.Diagnostics;
using System.Globalization;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests.ChangeFeed;

/// <summary>
/// Two app servers on one PostgreSQL database: a signed-in SignalR connection on node A (a real client over WebSockets)
/// closes when its session is revoked on node B; 100 revokes, the latency printed.
/// </summary>
public sealed class SignalRTwoNodeTests : TempFolderTest
{
    private const int Revokes = 100;

    [Test]
    public async Task ARevokeOnB_ClosesTheHubConnectionsOnA_100Times()
    {
        var server = await PostgresServer.SharedAsync();
        var connectionString = await server.CreateDatabaseAsync();
        try
        {
            await using var a = await SignalRTestApp.StartAsync(Path.Combine(Folder.Path, "a"), sessions: s => s.UsePostgreSql(connectionString));
            await using var b = await SessionTestHost.StartAsync(Path.Combine(Folder.Path, "b"), services: s => s.UsePostgreSql(connectionString));
            var managerOnB = b.Services.GetRequiredService<ISessionManager>();
            var latencies = new List<double>(Revokes);
            for (var i = 0; i < Revokes; i++)
            {
                var (cookies, sessionId) = await SignalRTestApp.SignInAsync(a, "user" + i.ToString(CultureInfo.InvariantCulture));
                await using var client = await HubClient.ConnectAsync(a, cookies);
                Assert.That(await client.Connection.InvokeAsync<string>("Whoami"), Is.EqualTo("user" + i.ToString(CultureInfo.InvariantCulture)));

                var watch = Stopwatch.StartNew();
                Assert.That(await managerOnB.RevokeAsync(sessionId), Is.True);
                Assert.That(await client.ClosesWithinAsync(TimeSpan.FromSeconds(10)), Is.True, "A's connection closes when B revokes its session");
                latencies.Add(watch.Elapsed.TotalMilliseconds);
            }

            latencies.Sort();
            TestContext.Progress.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"revoke on node B -> SignalR Closed on node A (PostgreSQL), {Revokes} revokes: p50 {Percentile(latencies, 0.50):F1} ms, p99 {Percentile(latencies, 0.99):F1} ms, max {latencies[^1]:F1} ms"));
        }
        finally
        {
            await server.DropDatabaseAsync(connectionString);
        }
    }

    private static double Percentile(List<double> sorted, double p) =>
        sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];
}
