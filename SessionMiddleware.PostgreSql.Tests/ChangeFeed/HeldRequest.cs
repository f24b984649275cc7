using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace SessionMiddleware.Tests.ChangeFeed;

/// <summary>
/// A long request that holds its session open, as a server-sent events stream does: <c>/hold</c> answers "held" at
/// once, then waits for <see cref="IServerSideSession.Ended"/> and finishes with "ended" (or stops when the client goes).
/// </summary>
internal sealed class HeldRequest : IDisposable
{
    private readonly HttpResponseMessage _response;

    private HeldRequest(HttpResponseMessage response, Task<string> rest)
    {
        _response = response;
        Rest = rest;
    }

    /// <summary>The rest of the response: "ended" once the session ended on the server that holds it.</summary>
    public Task<string> Rest { get; }

    /// <summary>The endpoint, mapped on the node that holds sessions.</summary>
    public static void Map(WebApplication app) => app.MapGet("/hold", async (HttpContext context) =>
    {
        var ended = context.GetServerSideSession().Ended;
        context.Response.ContentType = "text/plain";
        await context.Response.WriteAsync("held\n");
        await context.Response.Body.FlushAsync();
        using var either = CancellationTokenSource.CreateLinkedTokenSource(ended, context.RequestAborted);
        try
        {
            await Task.Delay(Timeout.Infinite, either.Token);
        }
        catch (OperationCanceledException)
        {
        }

        if (ended.IsCancellationRequested)
        {
            await context.Response.WriteAsync("ended");
        }
    });

    /// <summary>Opens <c>/hold</c> with <paramref name="cookie"/> and returns once the server holds the session.</summary>
    public static async Task<HeldRequest> StartAsync(HttpClient client, string cookie)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/hold");
        request.Headers.TryAddWithoutValidation("Cookie", cookie);
        var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        Assert.That(await reader.ReadLineAsync(), Is.EqualTo("held"));
        return new HeldRequest(response, reader.ReadToEndAsync());
    }

    /// <summary>Whether the request finished with "ended" within <paramref name="bound"/>.</summary>
    public async Task<bool> EndsWithinAsync(TimeSpan bound) =>
        await Task.WhenAny(Rest, Task.Delay(bound)) == Rest && await Rest == "ended";

    public void Dispose() => _response.Dispose();
}
