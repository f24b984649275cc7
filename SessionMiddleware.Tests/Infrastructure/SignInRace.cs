using System.Net;

namespace SessionMiddleware.Tests.Infrastructure;

/// <summary>Browsers that each hold a session sign the same user in at once (<c>/signin?user=</c> of <see cref="AuthTestApp"/>).</summary>
internal static class SignInRace
{
    /// <summary>Gives each browser a session, releases every sign-in at once, then asks each who it is.</summary>
    /// <returns>Each sign-in's status, and how many browsers are signed in as <paramref name="user"/> afterwards.</returns>
    public static async Task<(HttpStatusCode[] Statuses, int SignedIn)> RunAsync(IReadOnlyList<HttpClient> browsers, string user)
    {
        foreach (var browser in browsers)
        {
            await browser.GetTextAsync("/set?key=k&value=v");   // each has a session already, as a visitor about to sign in
        }

        using var start = new SemaphoreSlim(0);
        var signIns = browsers.Select(browser => Task.Run(async () =>
        {
            await start.WaitAsync();
            using var response = await browser.GetAsync($"/signin?user={user}");
            return response.StatusCode;
        })).ToList();
        start.Release(browsers.Count);
        var statuses = await Task.WhenAll(signIns);
        var signedIn = 0;
        foreach (var browser in browsers)
        {
            signedIn += await browser.GetTextAsync("/whoami") == user ? 1 : 0;
        }

        return (statuses, signedIn);
    }
}
