using Microsoft.AspNetCore.Http;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>The session cookie's attributes, over real HTTP and HTTPS.</summary>
public sealed class CookieAttributeTests : TempFolderTest
{
    [TestCase(CookieSecurePolicy.SameAsRequest, false, false)]
    [TestCase(CookieSecurePolicy.SameAsRequest, true, true)]
    [TestCase(CookieSecurePolicy.Always, false, true)]
    [TestCase(CookieSecurePolicy.Always, true, true)]
    [TestCase(CookieSecurePolicy.None, false, false)]
    [TestCase(CookieSecurePolicy.None, true, false)]
    public async Task Secure_FollowsSecurePolicy(CookieSecurePolicy policy, bool https, bool expectSecure)
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o => o.Cookie.SecurePolicy = policy, https: https);
        Assert.That(host.BaseAddress.Scheme, Is.EqualTo(https ? "https" : "http"));

        using var response = await host.CreateRawClient().GetAsync("/set?key=a&value=1");
        var attributes = Attributes(response.SetCookies(host.CookieName).Single());

        Assert.Multiple(() =>
        {
            Assert.That(attributes, expectSecure ? Does.Contain("secure") : Does.Not.Contain("secure"));
            Assert.That(attributes, Does.Contain("httponly"));
            Assert.That(attributes, Does.Contain("path=/"));
            Assert.That(attributes, Does.Contain("samesite=lax"));
            Assert.That(attributes.Any(a => a.StartsWith("expires", StringComparison.Ordinal) || a.StartsWith("max-age", StringComparison.Ordinal)), Is.False, "a session cookie by default");
        });
    }

    [TestCase(false)]
    [TestCase(true)]
    public async Task HostPrefixedName_IsAlwaysSecure_WithRootPathAndNoDomain(bool https)
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o => o.Cookie.Name = "__Host-sid", https: https);

        using var response = await host.CreateRawClient().GetAsync("/set?key=a&value=1");
        var header = response.SetCookies("__Host-sid").Single();
        var attributes = Attributes(header);

        Assert.Multiple(async () =>
        {
            Assert.That(attributes, Does.Contain("secure"));
            Assert.That(attributes, Does.Contain("path=/"));
            Assert.That(attributes.Any(a => a.StartsWith("domain", StringComparison.Ordinal)), Is.False);
            var cookie = $"__Host-sid={response.SetCookieValue("__Host-sid")}";
            Assert.That(await host.CreateRawClient().GetTextAsync("/get?key=a", cookie), Is.EqualTo("1"), "the prefixed cookie is read back");
        });
    }

    [Test]
    public async Task DomainPathAndSameSite_AreSentAsConfigured()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o =>
        {
            o.Cookie.Domain = "example.test";
            o.Cookie.Path = "/app";
            o.Cookie.SameSite = SameSiteMode.Strict;
        }, endpoints: app => Microsoft.AspNetCore.Builder.EndpointRouteBuilderExtensions.MapGet(app, "/app/set", (HttpContext c) =>
        {
            c.Session.SetString("a", "1");
            return "ok";
        }));

        using var response = await host.CreateRawClient().GetAsync("/app/set");
        var attributes = Attributes(response.SetCookies(host.CookieName).Single());

        Assert.That(attributes, Is.SupersetOf(new[] { "domain=example.test", "path=/app", "samesite=strict", "httponly" }));
    }

    [Test]
    public async Task PersistentCookie_HasMaxAge_AndIsReissuedWhenTheAccessIsRecorded()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o =>
        {
            o.Cookie.MaxAge = TimeSpan.FromDays(14);
            o.TouchInterval = TimeSpan.FromMinutes(1);
        });
        var client = host.CreateRawClient();
        using var created = await client.GetAsync("/set?key=a&value=1");
        var cookie = $"{host.CookieName}={created.SetCookieValue(host.CookieName)}";
        var createdAttributes = Attributes(created.SetCookies(host.CookieName).Single());

        host.Time.Advance(TimeSpan.FromSeconds(30));
        using var early = await client.SendWithCookieAsync("/get?key=a", cookie);
        host.Time.Advance(TimeSpan.FromSeconds(31));
        using var touched = await client.SendWithCookieAsync("/get?key=a", cookie);
        using var written = await client.SendWithCookieAsync("/set?key=b&value=2", cookie);
        var reissued = $"{host.CookieName}={touched.SetCookieValue(host.CookieName)}";
        var sameId = await client.GetTextAsync("/id", reissued) == await client.GetTextAsync("/id", cookie);

        Assert.Multiple(() =>
        {
            Assert.That(createdAttributes, Does.Contain("max-age=1209600"));
            Assert.That(early.SetCookies(host.CookieName), Is.Empty, "no touch within TouchInterval, so no re-issue");
            Assert.That(sameId, Is.True, "the re-issued cookie carries the same session ID, with its expiry slid");
            Assert.That(Attributes(touched.SetCookies(host.CookieName).Single()), Does.Contain("max-age=1209600"));
            Assert.That(written.SetCookies(host.CookieName), Has.Count.EqualTo(1), "a write records the access too");
        });
    }

    private static List<string> Attributes(string setCookie) =>
        setCookie.Split(';').Skip(1).Select(a => a.Trim().ToLowerInvariant()).ToList();
}
