using System.Net;
using System.Text.RegularExpressions;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests.OpenIdConnect;

/// <summary>
/// A browser for the authorization code flow: keeps cookies (the app's and the provider's), follows redirects by hand and
/// submits the provider's auto-posting form (response_mode=form_post).
/// </summary>
internal sealed partial class OpenIdConnectBrowser : IDisposable
{
    private readonly HttpClient _client;

    public OpenIdConnectBrowser(SessionTestHost app)
    {
        _client = new HttpClient(new HttpClientHandler { CookieContainer = Cookies, UseCookies = true, AllowAutoRedirect = false })
        {
            BaseAddress = app.BaseAddress,
        };
    }

    public CookieContainer Cookies { get; } = new();

    /// <summary>The provider session (sid) of the last sign-in.</summary>
    public string? ProviderSid { get; private set; }

    /// <summary>Signs in at the provider as <paramref name="subject"/> (a new provider session), then in the app through the code flow.</summary>
    public async Task<string> SignInAsync(TestOpenIdProvider provider, string subject)
    {
        ProviderSid = await _client.GetStringAsync(new Uri(provider.Issuer + "/login?sub=" + Uri.EscapeDataString(subject)));
        using var response = await FollowAsync(new HttpRequestMessage(HttpMethod.Get, "/login"));
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), "the code flow ends on /whoami");
        return await response.Content.ReadAsStringAsync();
    }

    public Task<string> GetStringAsync(string path) => _client.GetStringAsync(path);

    private async Task<HttpResponseMessage> FollowAsync(HttpRequestMessage request)
    {
        for (var hops = 0; hops < 10; hops++)
        {
            var response = await _client.SendAsync(request);
            var location = response.Headers.Location;
            if (response.StatusCode is HttpStatusCode.Redirect or HttpStatusCode.Found or HttpStatusCode.SeeOther && location is not null)
            {
                request = new HttpRequestMessage(HttpMethod.Get, location.IsAbsoluteUri ? location : new Uri(request.RequestUri!.IsAbsoluteUri ? request.RequestUri : new Uri(_client.BaseAddress!, request.RequestUri!), location));
                response.Dispose();
                continue;
            }

            var body = response.StatusCode == HttpStatusCode.OK ? await response.Content.ReadAsStringAsync() : "";
            if (AutoPostForm().Match(body) is { Success: true } form)
            {
                var fields = HiddenField().Matches(form.Groups["fields"].Value)
                    .Select(m => new KeyValuePair<string, string>(WebUtility.HtmlDecode(m.Groups["name"].Value), WebUtility.HtmlDecode(m.Groups["value"].Value)));
                request = new HttpRequestMessage(HttpMethod.Post, WebUtility.HtmlDecode(form.Groups["action"].Value)) { Content = new FormUrlEncodedContent(fields) };
                response.Dispose();
                continue;
            }

            return response;
        }

        throw new AssertionException("too many redirects in the sign-in");
    }

    [GeneratedRegex("""<form method="post" action="(?<action>[^"]*)">(?<fields>.*?)</form>""", RegexOptions.Singleline)]
    private static partial Regex AutoPostForm();

    [GeneratedRegex("""<input type="hidden" name="(?<name>[^"]*)" value="(?<value>[^"]*)"/>""")]
    private static partial Regex HiddenField();

    public void Dispose() => _client.Dispose();
}
