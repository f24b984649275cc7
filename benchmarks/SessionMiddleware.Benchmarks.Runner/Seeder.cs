using System.Net;

namespace SessionMiddleware.Benchmarks.Runner;

/// <summary>Creates the sessions that /read and /write use, through the server's own /new endpoint, and keeps their cookies.</summary>
internal static class Seeder
{
    public static async Task<IReadOnlyList<string>> SeedAsync(BenchServer server, int count)
    {
        if (server.Config is "none")
        {
            // No session at all: the same cookie header is sent so that the requests are the same size.
            return [.. Enumerable.Range(0, count).Select(i => $"bench=placeholder-{i:D4}")];
        }

        using var http = new HttpClient(new SocketsHttpHandler { UseCookies = false }) { Timeout = TimeSpan.FromSeconds(30) };
        var cookies = new string[count];
        using var gate = new SemaphoreSlim(8);
        var tasks = Enumerable.Range(0, count).Select(async i =>
        {
            await gate.WaitAsync();
            try
            {
                using var response = await http.GetAsync(server.BaseUrl + "/new");
                if (response.StatusCode != HttpStatusCode.OK || !response.Headers.TryGetValues("Set-Cookie", out var values))
                {
                    throw new InvalidOperationException($"{server.Config}: /new answered {(int)response.StatusCode} without a session cookie.");
                }

                // Every cookie /new sets (the session's, and the sign-in's in the authenticated configurations).
                cookies[i] = string.Join("; ", values.Select(v => v.Split(';', 2)[0]));
            }
            finally
            {
                gate.Release();
            }
        });
        await Task.WhenAll(tasks);

        // Check that the seeded sessions are there, so that a broken configuration fails here, not as a wall of wrk errors.
        foreach (var cookie in new[] { cookies[0], cookies[^1] })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, server.BaseUrl + "/read");
            request.Headers.Add("Cookie", cookie);
            using var response = await http.SendAsync(request);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw new InvalidOperationException($"{server.Config}: /read with a seeded cookie answered {(int)response.StatusCode}.");
            }
        }

        return cookies;
    }
}
