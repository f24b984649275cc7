using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;

namespace SessionMiddleware.Tests.Infrastructure;

/// <summary>Clients that send requests back to back for a while, each with its own session cookie, timing every answer.</summary>
internal static class LatencyLoad
{
    /// <summary>
    /// One client per cookie sends <paramref name="path"/>(client, n) until <paramref name="duration"/> passes or
    /// <paramref name="stop"/> is cancelled; a 200 is timed, anything else is an error.
    /// </summary>
    public static async Task<LatencyResult> RunAsync(HttpClient client, IEnumerable<string> cookies, Func<int, int, string> path, TimeSpan duration, CancellationToken stop)
    {
        var result = new LatencyResult();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
        timeout.CancelAfter(duration);
        await Task.WhenAll(cookies.Select(async (cookie, worker) =>
        {
            for (var n = 0; !timeout.IsCancellationRequested; n++)
            {
                var request = path(worker, n);
                var started = Stopwatch.GetTimestamp();
                using var response = await client.SendWithCookieAsync(request, cookie);
                var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    result.Latencies.Add(ms);
                }
                else
                {
                    result.Errors.Add($"{request}: {(int)response.StatusCode}");
                }
            }
        }));
        return result;
    }
}

/// <summary>The answers of a <see cref="LatencyLoad"/> run: latencies of the 200s (ms) and the other answers.</summary>
internal sealed class LatencyResult
{
    public ConcurrentBag<double> Latencies { get; } = [];

    public ConcurrentBag<string> Errors { get; } = [];

    public int Count => Latencies.Count;

    public double Max => Latencies.IsEmpty ? 0 : Latencies.Max();

    public double P(int percentile)
    {
        var sorted = Latencies.Order().ToArray();
        return sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, sorted.Length * percentile / 100)];
    }
}
