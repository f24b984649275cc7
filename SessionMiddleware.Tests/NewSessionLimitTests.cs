using System.Diagnostics.Metrics;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Middleware;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary><see cref="ServerSideSessionOptions.NewSessionLimit"/>: new sessions per client and window, through real requests.</summary>
public sealed class NewSessionLimitTests : TempFolderTest
{
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
            beforeSessions: forwardedHeaders ? app => app.UseForwardedHeaders(new ForwardedHeadersOptions { ForwardedHeaders = ForwardedHeaders.XForwardedFor }) : null);

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
        await using (var host = await SessionTestHost.StartAsync(Directory.CreateDirectory(Folder.File("default")).FullName))
        {
            var client = host.CreateRawClient();
            Assert.That(await NewSessionsAsync(client, 100), Has.All.EqualTo(HttpStatusCode.OK));
            using var response = await NewSessionAsync(client);
            beyond = response.StatusCode;
        }

        await using var off = await SessionTestHost.StartAsync(Directory.CreateDirectory(Folder.File("off")).FullName, o => o.NewSessionLimit = 0);
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
            Assert.That(warnings[0].Message, Does.Contain("127.0.0.1").And.Contain("NewSessionLimit").And.Contain("UseForwardedHeaders"));
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
                NewSessionLimiter.Decision.AllowedTableFull, NewSessionLimiter.Decision.Allowed,
            }), "beyond the table, clients are let through (and that is said once)");
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
}
