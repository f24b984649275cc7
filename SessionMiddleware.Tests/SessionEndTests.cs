using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// Where a session ends for good, over each store: <see cref="ServerSideSessionOptions.AbsoluteTimeout"/> caps a remembered
/// sign-in too, and a browser whose session ended is told to drop its cookie.
/// </summary>
[LaneFixture(StoreKind.Sqlite)]
[LaneFixture(StoreKind.PostgreSql)]
public sealed class SessionEndTests(StoreKind store) : TempFolderTest
{
    private static FakeTimeProvider Now() => new(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));

    [Test]
    public async Task AbsoluteTimeout_EndsARememberedSignIn_WithASlidingSevenDayTicket_VisitedOnceADay()
    {
        var time = Now();
        await using var host = await AuthTestApp.StartAsync(
            Folder.Path,
            time,
            cookie: o =>
            {
                o.ExpireTimeSpan = TimeSpan.FromDays(7);
                o.SlidingExpiration = true;
            },
            configure: o => o.AbsoluteTimeout = TimeSpan.FromHours(1),
            store: store);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/signin?user=erin&remember=true");
        var signedInId = await browser.GetTextAsync("/id");

        time.Advance(TimeSpan.FromMinutes(50));
        var within = await browser.GetTextAsync("/whoami");
        var days = new List<string>();
        for (var day = 1; day <= 3; day++)
        {
            time.Advance(TimeSpan.FromDays(1));
            days.Add(await browser.GetTextAsync("/whoami"));
        }

        var manager = host.Services.GetRequiredService<ISessionManager>();
        Assert.Multiple(async () =>
        {
            Assert.That(within, Is.EqualTo("erin"), "within the absolute limit");
            Assert.That(days, Is.All.EqualTo("anonymous"), "past AbsoluteTimeout the remembered sign-in has ended");
            Assert.That(await browser.GetTextAsync("/id"), Is.Not.EqualTo(signedInId));
            Assert.That(await manager.ListForUserAsync("erin"), Is.Empty);
        });
    }

    [Test]
    public async Task AbsoluteTimeout_EndsASessionWhoseRowWasWrittenWithALaterExpiry()
    {
        // A row recorded before AbsoluteTimeout was set (or shortened): the limit applies to it at once. Two hosts over one
        // database: on PostgreSQL each test host gets a database of its own, so this runs on SQLite.
        Assume.That(store, Is.EqualTo(StoreKind.Sqlite));
        var time = Now();
        var cookies = new CookieContainer();
        await using (var first = await AuthTestApp.StartAsync(Folder.Path, time, cookie: o => o.ExpireTimeSpan = TimeSpan.FromDays(7)))
        {
            await first.CreateBrowser(cookies).GetTextAsync("/signin?user=erin&remember=true");
        }

        time.Advance(TimeSpan.FromHours(2));
        await using var host = await AuthTestApp.StartAsync(
            Folder.Path,
            time,
            cookie: o => o.ExpireTimeSpan = TimeSpan.FromDays(7),
            configure: o => o.AbsoluteTimeout = TimeSpan.FromHours(1));

        Assert.That(await host.CreateBrowser(cookies).GetTextAsync("/whoami"), Is.EqualTo("anonymous"));
    }

    [Test]
    public async Task ARevokedSession_TheNextResponseExpiresItsCookie_AndTheBrowserStopsSendingIt()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, store: store);
        using var rejected = new MetricCollector<long>(host.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), ServerSideDiagnosticsName, ServerSideSessionDiagnostics.CookiesRejected);
        var cookies = new CookieContainer();
        var browser = host.CreateBrowser(cookies);
        await browser.GetTextAsync("/set?key=a&value=1");
        var id = await browser.GetTextAsync("/id");
        Assert.That(await host.Services.GetRequiredService<ISessionManager>().RevokeAsync(id), Is.True);

        using var next = await browser.GetAsync("/get?key=a");
        var afterwards = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            afterwards.Add(await browser.GetTextAsync("/get?key=a"));
        }

        Assert.Multiple(() =>
        {
            Assert.That(next.SetCookies(host.CookieName).Single(), Does.Contain("expires=Thu, 01 Jan 1970"), "the dead cookie is expired");
            Assert.That(cookies.GetCookies(host.BaseAddress)[host.CookieName], Is.Null, "the browser dropped it");
            Assert.That(afterwards, Is.All.EqualTo("(none)"));
            Assert.That(
                rejected.GetMeasurementSnapshot().Where(m => Equals(m.Tags["reason"], "unknown_session")).Sum(m => m.Value),
                Is.EqualTo(1),
                "counted once, not on every later request");
        });
    }

    [Test]
    public async Task ARevokedSession_ARequestThatWritesGetsANewSessionCookie_NotAnExpiredOne()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, store: store);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");
        var id = await browser.GetTextAsync("/id");
        await host.Services.GetRequiredService<ISessionManager>().RevokeAsync(id);

        using var write = await browser.GetAsync("/set?key=b&value=2");

        Assert.Multiple(async () =>
        {
            Assert.That(write.SetCookies(host.CookieName).Single(), Does.Not.Contain("1970"));
            Assert.That(await browser.GetTextAsync("/get?key=b"), Is.EqualTo("2"));
            Assert.That(await browser.GetTextAsync("/id"), Is.Not.EqualTo(id));
        });
    }

    [Test]
    public async Task ARequestWithTheOldIdOfASessionThisServerJustRenewed_LeavesTheCookieAlone()
    {
        // The browser may already hold the renewal's new cookie; expiring the old one would delete the new one.
        await using var host = await SessionTestHost.StartAsync(Folder.Path, store: store);
        var cookies = new CookieContainer();
        var browser = host.CreateBrowser(cookies);
        await browser.GetTextAsync("/set?key=a&value=1");
        var oldCookie = cookies.GetCookieHeader(host.BaseAddress);
        await browser.GetTextAsync("/regenerate");

        using var late = await host.CreateRawClient().SendWithCookieAsync("/get?key=a", oldCookie);

        Assert.Multiple(async () =>
        {
            Assert.That(late.SetCookies(host.CookieName), Is.Empty);
            Assert.That(await browser.GetTextAsync("/get?key=a"), Is.EqualTo("1"));
        });
    }

    private const string ServerSideDiagnosticsName = ServerSideSessionDiagnostics.MeterName;
}
