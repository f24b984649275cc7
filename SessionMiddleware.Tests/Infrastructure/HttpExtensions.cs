using System.Net;

namespace SessionMiddleware.Tests.Infrastructure;

internal static class HttpExtensions
{
    /// <summary>The Set-Cookie headers of a response for one cookie name.</summary>
    public static List<string> SetCookies(this HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues("Set-Cookie", out var values)
            ? values.Where(v => v.StartsWith(name + "=", StringComparison.Ordinal)).ToList()
            : [];

    /// <summary>The value of the one Set-Cookie of that name, or null.</summary>
    public static string? SetCookieValue(this HttpResponseMessage response, string name)
    {
        var header = response.SetCookies(name).SingleOrDefault();
        if (header is null)
        {
            return null;
        }

        var first = header.Split(';')[0];
        return first[(name.Length + 1)..];
    }

    public static async Task<string> GetTextAsync(this HttpClient client, string path, string? cookie = null)
    {
        using var response = await client.SendWithCookieAsync(path, cookie);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), $"GET {path}");
        return await response.Content.ReadAsStringAsync();
    }

    public static Task<HttpResponseMessage> SendWithCookieAsync(this HttpClient client, string path, string? cookieHeader)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (cookieHeader is not null)
        {
            request.Headers.TryAddWithoutValidation("Cookie", cookieHeader);
        }

        return client.SendAsync(request);
    }
}
