using System.Diagnostics.Metrics;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Middleware;
using SessionMiddleware.Tests.Infrastructure;
using Yarp.ReverseProxy.Configuration;

namespace SessionMiddleware.Tests;

/// <summary><see cref="ServerSideSessionOptions.NewSessionLimit"/>: new sessions per client and window, through real requests.</summary>
public sealed class NewSessionLimitTests : TempFolderTest
{
    /// <summary>The public address the tests' clients have (loopback and private addresses are not limited by default).</summary>
    private const string PublicClient = "203.0.113.7";

    private static Task<SessionTestHost> StartAsync(string folder, int limit, bool forwardedHeaders = false) =>
        SessionTestHost.StartAsync(
            folder,
            o =>
            {
                o.NewSessionLimit = limit;
                o.NewSessionLimitWindow = TimeSpan.FromMinutes(1);
            },
            endpoints: app => app.MapGet("/set-no-body", (HttpContext c) =>
            {
                c.Session.SetString("a", "1");
                return Results.NoContent();
            }),
            beforeSessions: forwardedHeaders ? app => app.UseForwardedHeaders(new ForwardedHeadersOptions { ForwardedHeaders = ForwardedHeaders.XForwardedFor }) : SimulateClients);

    /// <summary>
    /// Gives each request the client address of its <c>X-Test-Client</c> header, or <see cref="PublicClient"/>: other
    /// clients are simulated, all traffic stays on 127.0.0.1.
    /// </summary>
    private static void SimulateClients(WebApplication app) => app.Use((context, next) =>
    {
        context.Connection.RemoteIpAddress = IPAddress.Parse(context.Request.Headers.TryGetValue("X-Test-Client", out var client) ? client.ToString() : PublicClient);
        return next(context);
    });

    private static async Task<HttpResponseMessage> NewSessionAsync(HttpClient client, string path = "/set?key=a&value=1", string? forwardedFor = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (forwardedFor is not null)
        {
            request.Headers.Add("X-Forwarded-For", forwardedFor);
        }

        return await client.SendAsync(request);
    }

    private static async Task<List<HttpStatusCode>> NewSessionsAsync(HttpClient client, int count, string? forwardedFor = null)
    {
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < count; i++)
        {
            using var response = await NewSessionAsync(client, forwardedFor: forwardedFor);
            statuses.Add(response.StatusCode);
        }

        return statuses;
    }

    [Test]
    public async Task CookielessClient_BeyondTheLimit_Gets429WithRetryAfter_NoCookieAndNoRow_UntilTheWindowEnds()
    {
        await using var host = await StartAsync(Folder.Path, limit: 3);
        var client = host.CreateRawClient();

        var allowed = await NewSessionsAsync(client, 3);
        using var refused = await NewSessionAsync(client);
        using var refusedWithoutBody = await NewSessionAsync(client, "/set-no-body");
        host.Time.Advance(TimeSpan.FromSeconds(45));
        using var later = await NewSessionAsync(client);
        host.Time.Advance(TimeSpan.FromSeconds(15));
        using var nextWindow = await NewSessionAsync(client);

        Assert.Multiple(() =>
        {
            Assert.That(allowed, Has.All.EqualTo(HttpStatusCode.OK));
            Assert.That(refused.StatusCode, Is.EqualTo(HttpStatusCode.TooManyRequests), "refused while the app's body was being written (OnStarting)");
            Assert.That(refused.Headers.RetryAfter?.Delta, Is.EqualTo(TimeSpan.FromSeconds(60)));
            Assert.That(refused.SetCookies(host.CookieName), Is.Empty);
            Assert.That(refusedWithoutBody.StatusCode, Is.EqualTo(HttpStatusCode.TooManyRequests), "refused after the app, before the response started");
            Assert.That(refusedWithoutBody.Headers.RetryAfter?.Delta, Is.EqualTo(TimeSpan.FromSeconds(60)));
            Assert.That(refusedWithoutBody.SetCookies(host.CookieName), Is.Empty);
            Assert.That(later.StatusCode, Is.EqualTo(HttpStatusCode.TooManyRequests));
            Assert.That(later.Headers.RetryAfter?.Delta, Is.EqualTo(TimeSpan.FromSeconds(15)), "the time left in the window");
            Assert.That(nextWindow.StatusCode, Is.EqualTo(HttpStatusCode.OK), "a new window");
            Assert.That(nextWindow.SetCookies(host.CookieName), Has.Count.EqualTo(1));
            Assert.That(host.CountRows(), Is.EqualTo(4), "three, then one in the next window");
        });
    }

    [Test]
    public async Task Requests_WithALiveSession_AreNeverLimited_NorThoseThatDoNotWrite()
    {
        await using var host = await StartAsync(Folder.Path, limit: 1);
        var raw = host.CreateRawClient();
        var browser = host.CreateBrowser();

        var reads = new List<HttpStatusCode>();
        for (var i = 0; i < 5; i++)
        {
            using var read = await raw.GetAsync("/get?key=a");
            reads.Add(read.StatusCode);
        }

        await browser.GetTextAsync("/set?key=a&value=1");
        using var otherClient = await NewSessionAsync(raw);
        var writes = new List<HttpStatusCode>();
        foreach (var path in new[] { "/set?key=b&value=2", "/count", "/regenerate", "/bind?user=alice", "/count" })
        {
            using var response = await browser.GetAsync(path);
            writes.Add(response.StatusCode);
        }

        Assert.Multiple(async () =>
        {
            Assert.That(reads, Has.All.EqualTo(HttpStatusCode.OK), "requests that create no session are not counted");
            Assert.That(otherClient.StatusCode, Is.EqualTo(HttpStatusCode.TooManyRequests), "the one new session of this address was the browser's");
            Assert.That(writes, Has.All.EqualTo(HttpStatusCode.OK), "writes, renewals and sign-ins of a live session");
            Assert.That(await browser.GetTextAsync("/count"), Is.EqualTo("3"));
            Assert.That(host.CountRows(), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task BehindAProxy_WithForwardedHeaders_EachClientHasItsOwnLimit_AndAnIPv6Slash64IsOneClient()
    {
        await using var host = await StartAsync(Folder.Path, limit: 2, forwardedHeaders: true);
        var proxy = host.CreateRawClient();

        var first = await NewSessionsAsync(proxy, 3, forwardedFor: "203.0.113.1");
        var second = await NewSessionsAsync(proxy, 2, forwardedFor: "203.0.113.2");
        var v6 = new List<HttpStatusCode>();
        foreach (var address in new[] { "2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::3", "2001:db8:1:3::1" })
        {
            using var response = await NewSessionAsync(proxy, forwardedFor: address);
            v6.Add(response.StatusCode);
        }

        Assert.Multiple(() =>
        {
            Assert.That(first, Is.EqualTo(new[] { HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests }));
            Assert.That(second, Has.All.EqualTo(HttpStatusCode.OK), "another client behind the same proxy");
            Assert.That(v6, Is.EqualTo(new[] { HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests, HttpStatusCode.OK }), "2001:db8:1:2::/64 is one client");
        });
    }

    [Test]
    public async Task Default_Allows100NewSessionsPerMinute_AndZeroTurnsTheLimitOff()
    {
        var defaults = new ServerSideSessionOptions();
        Assert.That((defaults.NewSessionLimit, defaults.NewSessionLimitWindow), Is.EqualTo((100, TimeSpan.FromMinutes(1))));

        HttpStatusCode beyond;
        await using (var host = await SessionTestHost.StartAsync(Directory.CreateDirectory(Folder.File("default")).FullName, beforeSessions: SimulateClients))
        {
            var client = host.CreateRawClient();
            Assert.That(await NewSessionsAsync(client, 100), Has.All.EqualTo(HttpStatusCode.OK));
            using var response = await NewSessionAsync(client);
            beyond = response.StatusCode;
        }

        await using var off = await SessionTestHost.StartAsync(Directory.CreateDirectory(Folder.File("off")).FullName, o => o.NewSessionLimit = 0, beforeSessions: SimulateClients);
        var offStatuses = await NewSessionsAsync(off.CreateRawClient(), 120);

        Assert.Multiple(() =>
        {
            Assert.That(beyond, Is.EqualTo(HttpStatusCode.TooManyRequests));
            Assert.That(offStatuses, Has.All.EqualTo(HttpStatusCode.OK));
            Assert.That(off.CountRows(), Is.EqualTo(120));
        });
    }

    [Test]
    public async Task Refusals_AreCounted_AndLoggedOncePerClientAndWindow()
    {
        await using var host = await StartAsync(Folder.Path, limit: 1);
        using var refusals = new MetricCollector<long>(host.Services.GetRequiredService<IMeterFactory>(), ServerSideSessionDiagnostics.MeterName, ServerSideSessionDiagnostics.SessionsRateLimited);
        var client = host.CreateRawClient();

        var statuses = await NewSessionsAsync(client, 4);
        host.Time.Advance(TimeSpan.FromMinutes(1));
        statuses.AddRange(await NewSessionsAsync(client, 2));

        var warnings = host.Logs.GetSnapshot().Where(r => r.Id.Name == "NewSessionLimitReached").ToList();
        Assert.Multiple(() =>
        {
            Assert.That(statuses, Is.EqualTo(new[] { HttpStatusCode.OK, HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests, HttpStatusCode.OK, HttpStatusCode.TooManyRequests }));
            Assert.That(refusals.GetMeasurementSnapshot().Sum(m => m.Value), Is.EqualTo(4));
            Assert.That(refusals.GetMeasurementSnapshot().SelectMany(m => m.Tags.Keys), Is.Empty, "no address as a tag");
            Assert.That(warnings, Has.Count.EqualTo(2), "once per window");
            Assert.That(warnings.Select(w => w.Level), Has.All.EqualTo(Microsoft.Extensions.Logging.LogLevel.Warning));
            Assert.That(warnings[0].Message, Does.Contain(PublicClient).And.Contain("NewSessionLimit").And.Contain("UseForwardedHeaders"));
        });
    }

    [Test]
    public void Limiter_TracksAtMostMaxClients_AndForgetsEndedWindows()
    {
        var time = new FakeTimeProvider();
        using var limiter = new NewSessionLimiter(limit: 1, TimeSpan.FromMinutes(1), time, maxClients: 3);
        var decisions = Enumerable.Range(1, 5).Select(i => limiter.TryAcquire(Client($"192.0.2.{i}"), out _)).ToList();
        var trackedWhenFull = limiter.TrackedClients;
        var repeat = limiter.TryAcquire(Client("192.0.2.1"), out var retryAfter);
        time.Advance(TimeSpan.FromMinutes(1));
        var afterWindow = limiter.TryAcquire(Client("192.0.2.9"), out _);

        Assert.Multiple(() =>
        {
            Assert.That(decisions, Is.EqualTo(new[]
            {
                NewSessionLimiter.Decision.Allowed, NewSessionLimiter.Decision.Allowed, NewSessionLimiter.Decision.Allowed,
                NewSessionLimiter.Decision.AllowedTableFull, NewSessionLimiter.Decision.FirstRefusal,
            }), "beyond the table, clients share a counter with their /24 (the table being full is said once)");
            Assert.That(trackedWhenFull, Is.EqualTo(3));
            Assert.That(repeat, Is.EqualTo(NewSessionLimiter.Decision.FirstRefusal));
            Assert.That(retryAfter, Is.EqualTo(TimeSpan.FromMinutes(1)));
            Assert.That(afterWindow, Is.EqualTo(NewSessionLimiter.Decision.Allowed));
            Assert.That(limiter.TrackedClients, Is.EqualTo(1), "the ended windows were swept");
        });

        static DefaultHttpContext Client(string address)
        {
            var context = new DefaultHttpContext();
            context.Connection.RemoteIpAddress = IPAddress.Parse(address);
            return context;
        }
    }

    // ---- Behind a reverse proxy (a real YARP on 127.0.0.1 in front of the real app) ----

    /// <summary>Starts YARP on 127.0.0.1 forwarding everything to <paramref name="app"/>; its clients' addresses come from <c>X-Test-Client</c>.</summary>
    private static async Task<WebApplication> StartProxyAsync(SessionTestHost app)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.AddReverseProxy().LoadFromMemory(
            [new RouteConfig { RouteId = "all", ClusterId = "app", Match = new RouteMatch { Path = "{**catch-all}" } }],
            [new ClusterConfig { ClusterId = "app", Destinations = new Dictionary<string, DestinationConfig> { ["app"] = new() { Address = app.BaseAddress.ToString() } } }]);
        var proxy = builder.Build();
        SimulateClients(proxy);
        proxy.MapReverseProxy();
        await proxy.StartAsync();
        return proxy;
    }

    private static Uri AddressOf(WebApplication app) =>
        new(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());

    private static async Task<List<HttpStatusCode>> NewSessionsFromAsync(HttpClient client, string clientAddress, int count)
    {
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < count; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/set?key=a&value=1");
            request.Headers.Add("X-Test-Client", clientAddress);
            using var response = await client.SendAsync(request);
            statuses.Add(response.StatusCode);
        }

        return statuses;
    }

    [Test]
    public async Task BehindAProxyWithoutForwardedHeaders_ManyNewSessions_DoNotLockOutAnotherClientsSignIn_AndOneWarningNamesUseForwardedHeaders()
    {
        // The default limit, the app unaware of the proxy: it sees every client as 127.0.0.1.
        await using var app = await SessionTestHost.StartAsync(Folder.Path);
        await using var proxy = await StartProxyAsync(app);
        using var handler = new HttpClientHandler { UseCookies = false, AllowAutoRedirect = false };
        using var viaProxy = new HttpClient(handler) { BaseAddress = AddressOf(proxy) };

        var flood = await NewSessionsFromAsync(viaProxy, "203.0.113.1", 150);
        using var signIn = new HttpRequestMessage(HttpMethod.Get, "/bind?user=alice");
        signIn.Headers.Add("X-Test-Client", "198.51.100.2");
        using var signedIn = await viaProxy.SendAsync(signIn);
        var cookie = signedIn.SetCookies(app.CookieName).SingleOrDefault();
        using var next = new HttpRequestMessage(HttpMethod.Get, "/user");
        next.Headers.Add("Cookie", cookie?.Split(';')[0]);
        using var user = await viaProxy.SendAsync(next);

        var warnings = app.Logs.GetSnapshot().Where(r => r.Id.Name == "ForwardedHeadersNotApplied").ToList();
        Assert.Multiple(async () =>
        {
            Assert.That(flood, Has.All.EqualTo(HttpStatusCode.OK), "the proxy's address (loopback) is not limited");
            Assert.That(signedIn.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(cookie, Is.Not.Null, "the sign-in got its session");
            Assert.That(await user.Content.ReadAsStringAsync(), Is.EqualTo("alice"));
            Assert.That(warnings, Has.Count.EqualTo(1), "once, though every request carried X-Forwarded-For");
            Assert.That(warnings.Select(w => w.Level), Has.All.EqualTo(Microsoft.Extensions.Logging.LogLevel.Warning));
            Assert.That(warnings[0].Message, Does.Contain("UseForwardedHeaders()").And.Contain("X-Forwarded-For").And.Contain("127.0.0.1"));
        });
    }

    [Test]
    public async Task BehindAProxyWithForwardedHeaders_EachClientIsLimited_AndNothingIsWarned()
    {
        await using var app = await SessionTestHost.StartAsync(
            Folder.Path,
            o => o.NewSessionLimit = 3,
            beforeSessions: a => a.UseForwardedHeaders(new ForwardedHeadersOptions { ForwardedHeaders = ForwardedHeaders.XForwardedFor }));
        await using var proxy = await StartProxyAsync(app);
        using var handler = new HttpClientHandler { UseCookies = false, AllowAutoRedirect = false };
        using var viaProxy = new HttpClient(handler) { BaseAddress = AddressOf(proxy) };

        var first = await NewSessionsFromAsync(viaProxy, "203.0.113.1", 4);
        var second = await NewSessionsFromAsync(viaProxy, "198.51.100.2", 3);

        Assert.Multiple(() =>
        {
            Assert.That(first, Is.EqualTo(new[] { HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests }));
            Assert.That(second, Has.All.EqualTo(HttpStatusCode.OK), "another client behind the same proxy");
            Assert.That(app.Logs.GetSnapshot().Where(r => r.Id.Name == "ForwardedHeadersNotApplied"), Is.Empty);
        });
    }

    [Test]
    public async Task LoopbackAndPrivateAddresses_AreNotLimited_UnlessNewSessionLimitIncludesPrivateAddresses()
    {
        var exempt = new[] { "127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "172.31.255.254", "192.168.1.1", "169.254.0.9", "100.64.0.1", "::1", "fd00::1", "fc00::2", "fe80::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1" };
        var limited = new[] { "172.32.0.1", "172.15.255.255", "192.169.0.1", "100.128.0.1", "8.8.8.8", "2001:db8::1", "::ffff:203.0.113.1" };
        Assert.Multiple(() =>
        {
            Assert.That(exempt.Where(a => !NewSessionLimiter.IsLoopbackOrPrivate(IPAddress.Parse(a))), Is.Empty);
            Assert.That(limited.Where(a => NewSessionLimiter.IsLoopbackOrPrivate(IPAddress.Parse(a))), Is.Empty);
            Assert.That(new ServerSideSessionOptions().NewSessionLimitIncludesPrivateAddresses, Is.False);
        });

        Dictionary<string, List<HttpStatusCode>> byDefault = [];
        await using (var host = await SessionTestHost.StartAsync(Directory.CreateDirectory(Folder.File("default")).FullName, o => o.NewSessionLimit = 2, beforeSessions: SimulateClients))
        {
            var client = host.CreateRawClient();
            foreach (var address in new[] { "10.1.2.3", "fd00::1", "::ffff:192.168.1.1", "127.0.0.1", "198.51.100.1" })
            {
                byDefault[address] = await NewSessionsFromAsync(client, address, 4);
            }
        }

        await using var included = await SessionTestHost.StartAsync(Directory.CreateDirectory(Folder.File("included")).FullName, o =>
        {
            o.NewSessionLimit = 2;
            o.NewSessionLimitIncludesPrivateAddresses = true;
        });
        var loopback = await NewSessionsAsync(included.CreateRawClient(), 3);

        var limitedTwice = new[] { HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests };
        Assert.Multiple(() =>
        {
            foreach (var address in new[] { "10.1.2.3", "fd00::1", "::ffff:192.168.1.1", "127.0.0.1" })
            {
                Assert.That(byDefault[address], Has.All.EqualTo(HttpStatusCode.OK), address);
            }

            Assert.That(byDefault["198.51.100.1"], Is.EqualTo(limitedTwice), "a public address is limited");
            Assert.That(loopback, Is.EqualTo(new[] { HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests }), "opted in: loopback is limited too");
        });
    }

    // ---- The refusal's response ----

    private const string Html = "<!DOCTYPE html><html><body><h1>Your basket</h1></body></html>";

    [Test]
    public async Task RefusedNewSession_Answers429OfItsOwn_WithoutTheAppsBody_KeepingTheSecurityHeaders_WhateverWayTheAppWrites()
    {
        var security = new Dictionary<string, string>
        {
            ["Content-Security-Policy"] = "default-src 'self'",
            ["X-Frame-Options"] = "DENY",
            ["X-Content-Type-Options"] = "nosniff",
            ["Referrer-Policy"] = "no-referrer",
            ["Strict-Transport-Security"] = "max-age=31536000",
        };
        await using var host = await SessionTestHost.StartAsync(
            Folder.Path,
            o => o.NewSessionLimit = 1,
            endpoints: app =>
            {
                var html = System.Text.Encoding.UTF8.GetBytes(Html);
                app.MapGet("/page/result", (HttpContext c) =>
                {
                    c.Session.SetString("basket", "1");
                    return Results.Content(Html, "text/html");
                });
                app.MapGet("/page/stream", async (HttpContext c) =>
                {
                    c.Session.SetString("basket", "1");
                    c.Response.ContentType = "text/html";
                    c.Response.ContentLength = html.Length;
                    await c.Response.Body.WriteAsync(html);
                });
                app.MapGet("/page/writer", async (HttpContext c) =>
                {
                    c.Session.SetString("basket", "1");
                    c.Response.ContentType = "text/html";
                    html.CopyTo(c.Response.BodyWriter.GetSpan(html.Length));
                    c.Response.BodyWriter.Advance(html.Length);
                    await c.Response.BodyWriter.FlushAsync();
                });
                app.MapGet("/page/writer-unflushed", (HttpContext c) =>
                {
                    c.Session.SetString("basket", "1");
                    c.Response.ContentType = "text/html";
                    html.CopyTo(c.Response.BodyWriter.GetSpan(html.Length));
                    c.Response.BodyWriter.Advance(html.Length);
                    return Task.CompletedTask;
                });
                app.MapGet("/page/on-starting", async (HttpContext c) =>
                {
                    // As TempData does: the session is written as the response starts, after the app's first write.
                    c.Response.OnStarting(() =>
                    {
                        c.Session.SetString("basket", "1");
                        return Task.CompletedTask;
                    });
                    c.Response.ContentType = "text/html";
                    await c.Response.Body.WriteAsync(html);
                });
                app.MapGet("/page/json", (HttpContext c) =>
                {
                    c.Session.SetString("basket", "1");
                    return Results.Json(new { basket = Html });
                });
                app.MapGet("/page/redirect", (HttpContext c) =>
                {
                    c.Session.SetString("basket", "1");
                    return Results.Redirect("/basket");
                });
            },
            beforeSessions: app =>
            {
                SimulateClients(app);
                app.Use((context, next) =>
                {
                    foreach (var (name, value) in security)
                    {
                        context.Response.Headers[name] = value;
                    }

                    context.Response.Headers["X-App-Data"] = "not for a refusal";
                    return next(context);
                });
            });
        var client = host.CreateRawClient();
        using (var first = await client.GetAsync("/set?key=a&value=1"))
        {
            Assert.That(first.StatusCode, Is.EqualTo(HttpStatusCode.OK), "the client's one new session");
        }

        foreach (var path in new[] { "/page/result", "/page/stream", "/page/writer", "/page/writer-unflushed", "/page/on-starting", "/page/json", "/page/redirect" })
        {
            using var response = await client.GetAsync(path);
            var body = await response.Content.ReadAsStringAsync();
            Assert.Multiple(() =>
            {
                Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.TooManyRequests), path);
                Assert.That(body, Does.Not.Contain("basket").And.Contains("Too many new sessions"), path + ": the refusal's own body");
                Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("text/plain"), path);
                Assert.That(response.Content.Headers.ContentLength, Is.EqualTo(System.Text.Encoding.UTF8.GetByteCount(body)), path);
                Assert.That(response.Headers.RetryAfter?.Delta, Is.EqualTo(TimeSpan.FromSeconds(60)), path);
                Assert.That(response.Headers.CacheControl?.NoStore, Is.True, path);
                Assert.That(response.Headers.Location, Is.Null, path);
                Assert.That(response.Headers.Contains("X-App-Data"), Is.False, path + ": the app's other headers go");
                Assert.That(response.SetCookies(host.CookieName), Is.Empty, path);
                foreach (var (name, value) in security)
                {
                    Assert.That(response.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : null, Is.EqualTo(value), $"{path}: {name}");
                }
            });
        }

        Assert.That(host.CountRows(), Is.EqualTo(1), "no refused session was stored");
    }

    [Test]
    public async Task AllowedNewSessions_ReachTheClientWhole_WhateverWayTheAppWrites()
    {
        await using var host = await SessionTestHost.StartAsync(
            Folder.Path,
            o => o.NewSessionLimit = 100,
            endpoints: app =>
            {
                var html = System.Text.Encoding.UTF8.GetBytes(Html);
                app.MapGet("/page/writer-unflushed", (HttpContext c) =>
                {
                    c.Session.SetString("basket", "1");
                    var span = c.Response.BodyWriter.GetSpan(html.Length);
                    html.CopyTo(span);
                    c.Response.BodyWriter.Advance(html.Length);
                    return Task.CompletedTask;
                });
                app.MapGet("/page/stream", async (HttpContext c) =>
                {
                    c.Session.SetString("basket", "1");
                    for (var i = 0; i < 3; i++)
                    {
                        await c.Response.Body.WriteAsync(html);
                    }
                });
            },
            beforeSessions: SimulateClients);
        var client = host.CreateRawClient();
        using var unflushed = await client.GetAsync("/page/writer-unflushed");
        using var stream = await client.GetAsync("/page/stream");

        Assert.Multiple(async () =>
        {
            Assert.That(await unflushed.Content.ReadAsStringAsync(), Is.EqualTo(Html));
            Assert.That(unflushed.SetCookies(host.CookieName), Has.Count.EqualTo(1));
            Assert.That(await stream.Content.ReadAsStringAsync(), Is.EqualTo(Html + Html + Html));
            Assert.That(stream.SetCookies(host.CookieName), Has.Count.EqualTo(1));
        });
    }

    // ---- A full table ----

    [Test]
    public async Task FullTable_StillLimits_ANewSlash64_AfterA47FilledIt()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, beforeSessions: SimulateClients);
        var limiter = host.Services.GetRequiredService<NewSessionGate>().Limiter!;
        Assert.That(limiter.MaxClients, Is.EqualTo(NewSessionLimiter.DefaultMaxClients));

        // 100,000 /64s of 2001:db8::/47, each with one new session: the table is full.
        var context = new DefaultHttpContext();
        var bytes = new byte[16];
        bytes[0] = 0x20;
        bytes[1] = 0x01;
        bytes[2] = 0x0d;
        bytes[3] = 0xb8;
        for (var i = 0; i < NewSessionLimiter.DefaultMaxClients; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4), (uint)i);
            context.Connection.RemoteIpAddress = new IPAddress(bytes);
            Assert.That(limiter.TryAcquire(context, out _), Is.EqualTo(NewSessionLimiter.Decision.Allowed));
        }

        var statuses = await NewSessionsFromAsync(host.CreateRawClient(), "2001:db8:ff00:1::5", 110);

        Assert.Multiple(() =>
        {
            Assert.That(limiter.TrackedClients, Is.EqualTo(NewSessionLimiter.DefaultMaxClients), "memory stays bounded");
            Assert.That(statuses.Take(100), Has.All.EqualTo(HttpStatusCode.OK));
            Assert.That(statuses.Skip(100), Has.All.EqualTo(HttpStatusCode.TooManyRequests), "a full table still limits");
            Assert.That(host.Logs.GetSnapshot().Count(r => r.Id.Name == "NewSessionLimitTableFull"), Is.EqualTo(1));
        });
    }
}
