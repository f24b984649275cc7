using System.Diagnostics;
using System.Net;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// Ends reach another process on the same SQLite file: a long request in process A waits on its session's
/// <see cref="IServerSideSession.Ended"/> while process B revokes the session. Real processes, real HTTP.
/// </summary>
[Category("Process")]
public sealed class LiveProcessTests : TempFolderTest
{
    private const int Revokes = 100;

    [Test]
    public async Task ARevokeInAnotherProcess_EndsTheLongRequestsOfThisOne_100Times()
    {
        var db = Folder.File("live.db");
        var keys = Folder.File("keys");
        await using var a = await ChildHost.StartAsync(db, keys);
        await using var b = await ChildHost.StartAsync(db, keys);
        using var client = new HttpClient(new HttpClientHandler { UseCookies = false }) { Timeout = TimeSpan.FromMinutes(2) };

        var latencies = new List<double>();
        var answers = new List<string>();
        for (var i = 0; i < Revokes; i++)
        {
            using var created = await client.GetAsync(new Uri(a.BaseAddress, $"/bind?user=user{i}"));
            var id = await created.Content.ReadAsStringAsync();
            var cookie = created.Headers.GetValues("Set-Cookie").Single().Split(';')[0];

            using var wait = new HttpRequestMessage(HttpMethod.Get, new Uri(a.BaseAddress, "/wait-ended?seconds=30"));
            wait.Headers.Add("Cookie", cookie);
            using var waiting = await client.SendAsync(wait, HttpCompletionOption.ResponseHeadersRead);
            var body = waiting.Content.ReadAsStringAsync();

            var clock = Stopwatch.StartNew();
            using var revoked = await client.GetAsync(new Uri(b.BaseAddress, $"/revoke?id={id}"));
            Assert.That(await revoked.Content.ReadAsStringAsync(), Is.EqualTo("revoked"));
            answers.Add(await body);
            latencies.Add(clock.Elapsed.TotalMilliseconds);
        }

        latencies.Sort();
        TestContext.Progress.WriteLine(
            $"revoke in process B -> long request in process A ended, {Revokes} revokes: p50 {Percentile(latencies, 0.50):F0} ms, " +
            $"p99 {Percentile(latencies, 0.99):F0} ms, max {latencies[^1]:F0} ms");
        Assert.Multiple(() =>
        {
            Assert.That(answers, Is.All.EqualTo("ended"), "every held session ended in the other process (none waited out its 30 s)");
            Assert.That(latencies[^1], Is.LessThan(10_000), "the end is pushed within the poll interval, never left to a timeout");
        });
    }

    private static double Percentile(List<double> sorted, double p) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
}
