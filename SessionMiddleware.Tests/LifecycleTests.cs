using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using SessionMiddleware.Cleanup;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>ID renewal, abandon, users, device info and absolute timeout, through a real host, over each store.</summary>
[LaneFixture(StoreKind.Sqlite)]
[LaneFixture(StoreKind.PostgreSql)]
public sealed class LifecycleTests(StoreKind store) : TempFolderTest
{
    private Task<SessionTestHost> StartHostAsync(
        Action<ServerSideSessionOptions>? configure = null,
        Action<IServerSideSessionsBuilder>? services = null,
        Action<WebApplication>? endpoints = null) =>
        SessionTestHost.StartAsync(Folder.Path, configure, services, endpoints, store: store);

    [TestCase("/late-signout")]
    [TestCase("/late-regenerate")]
    public async Task LifecycleCall_AfterTheResponseStarted_ThrowsAtOnce_NamingTheRule_InsteadOfBeingDropped(string path)
    {
        var errors = new System.Collections.Concurrent.ConcurrentQueue<Exception?>();
        await using var host = await StartHostAsync(endpoints: app =>
        {
            app.MapGet("/late-signout", (HttpContext c) => LateAsync(c, s => s.BindToUser(null)));
            app.MapGet("/late-regenerate", (HttpContext c) => LateAsync(c, s => s.RegenerateId()));
            async Task LateAsync(HttpContext c, Action<IServerSideSession> call)
            {
                await c.Response.WriteAsync("started");
                await c.Response.Body.FlushAsync();
                Exception? error = null;
                try
                {
                    call(c.GetServerSideSession());
                }
                catch (InvalidOperationException e)
                {
                    error = e;
                }

                errors.Enqueue(error);
            }
        });
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/bind?user=alice");
        var id = await browser.GetTextAsync("/id");

        await browser.GetTextAsync(path);

        Assert.Multiple(async () =>
        {
            Assert.That(errors.Single(), Is.Not.Null, "the call is refused, not silently dropped");
            Assert.That(errors.Single()?.Message, Does.Contain("after the response has started"));
            Assert.That(await browser.GetTextAsync("/user"), Is.EqualTo("alice"), "nothing changed, as the exception said");
            Assert.That(await browser.GetTextAsync("/id"), Is.EqualTo(id));
        });
    }

    [Test]
    public async Task RegenerateId_GivesANewCookie_KeepsTheData_AndKillsTheOldId()
    {
        await using var host = await StartHostAsync();
        var client = host.CreateRawClient();
        using var first = await client.GetAsync("/set?key=a&value=kept");
        var oldCookie = Cookie(host, first);
        var oldId = await client.GetTextAsync("/id", oldCookie);

        using var regenerate = await client.SendWithCookieAsync("/regenerate", oldCookie);
        var newCookie = Cookie(host, regenerate);
        var idInRequest = await regenerate.Content.ReadAsStringAsync();

        Assert.Multiple(async () =>
        {
            Assert.That(host.SessionIdOf(newCookie), Is.EqualTo(idInRequest).And.Not.EqualTo(oldId), "the new cookie names the new ID");
            Assert.That(regenerate.Headers.CacheControl?.NoStore, Is.True);
            Assert.That(await client.GetTextAsync("/get?key=a", newCookie), Is.EqualTo("kept"));
            Assert.That(await client.GetTextAsync("/id", newCookie), Is.EqualTo(idInRequest).And.Not.EqualTo(oldId), "Id is the new one from the call on");
            Assert.That(await client.GetTextAsync("/get?key=a", oldCookie), Is.EqualTo("(none)"), "the old ID is dead");
            Assert.That(await host.CountRowsAsync(), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task RegenerateId_KeepsTheCreationTime()
    {
        await using var host = await StartHostAsync(endpoints: app =>
            app.MapGet("/created", (HttpContext c) => c.GetServerSideSession().CreatedAt.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture)));
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");
        var created = await browser.GetTextAsync("/created");

        host.Time.Advance(TimeSpan.FromMinutes(5));
        await browser.GetTextAsync("/regenerate");

        Assert.That(await browser.GetTextAsync("/created"), Is.EqualTo(created));
    }

    [Test]
    public async Task OldCookie_AfterRegenerate_WritesUnderANewId_NeverTheOldOne()
    {
        await using var host = await StartHostAsync();
        var client = host.CreateRawClient();
        using var first = await client.GetAsync("/set?key=a&value=1");
        var oldCookie = Cookie(host, first);
        using var regenerate = await client.SendWithCookieAsync("/regenerate", oldCookie);
        var newCookie = Cookie(host, regenerate);

        using var replay = await client.SendWithCookieAsync("/set?key=b&value=attacker", oldCookie);
        var replayCookie = Cookie(host, replay);
        using var replayAgain = await client.SendWithCookieAsync("/set?key=c&value=attacker", oldCookie);

        Assert.Multiple(async () =>
        {
            Assert.That(host.SessionIdOf(replayCookie), Is.Not.EqualTo(host.SessionIdOf(oldCookie)).And.Not.EqualTo(host.SessionIdOf(newCookie)));
            Assert.That(host.SessionIdOf(Cookie(host, replayAgain)), Is.Not.EqualTo(host.SessionIdOf(replayCookie)), "the old cookie replayed again is not in the first replay's session");
            Assert.That(await client.GetTextAsync("/keys", newCookie), Is.EqualTo("a"), "the renewed session is untouched");
            Assert.That(await client.GetTextAsync("/keys", replayCookie), Is.EqualTo("b"));
        });
    }

    [Test]
    public async Task Abandon_DeletesTheRow_ExpiresTheCookie_AndTheOldCookieIsDead()
    {
        await using var host = await StartHostAsync();
        var client = host.CreateRawClient();
        using var first = await client.GetAsync("/set?key=a&value=1");
        var cookie = Cookie(host, first);

        using var abandon = await client.SendWithCookieAsync("/abandon", cookie);
        var expired = abandon.SetCookies(host.CookieName).Single();
        var rows = await host.CountRowsAsync();
        var read = await client.GetTextAsync("/get?key=a", cookie);
        using var write = await client.SendWithCookieAsync("/set?key=b&value=2", cookie);

        Assert.Multiple(() =>
        {
            Assert.That(expired, Does.Contain("expires=Thu, 01 Jan 1970").IgnoreCase);
            Assert.That(rows, Is.Zero);
            Assert.That(read, Is.EqualTo("(none)"));
            Assert.That(host.SessionIdOf(Cookie(host, write)), Is.Not.EqualTo(host.SessionIdOf(cookie)), "a write after abandon creates a new ID");
        });
    }

    [Test]
    public async Task Abandon_ThenWriteInTheSameRequest_StartsANewSession()
    {
        await using var host = await StartHostAsync(endpoints: app =>
            app.MapGet("/signout", (HttpContext c) =>
            {
                c.GetServerSideSession().Abandon();
                c.Session.SetString("flash", "signed out");
                return "ok";
            }));
        var client = host.CreateRawClient();
        using var first = await client.GetAsync("/set?key=a&value=1");
        var cookie = Cookie(host, first);

        using var signout = await client.SendWithCookieAsync("/signout", cookie);
        var newCookie = Cookie(host, signout);

        Assert.Multiple(async () =>
        {
            Assert.That(host.SessionIdOf(newCookie), Is.Not.EqualTo(host.SessionIdOf(cookie)));
            Assert.That(await client.GetTextAsync("/keys", newCookie), Is.EqualTo("flash"));
            Assert.That(await client.GetTextAsync("/keys", cookie), Is.EqualTo(""));
            Assert.That(await host.CountRowsAsync(), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task BindToUser_AnotherUser_ChangesTheCookie_AndStoresTheUser()
    {
        await using var host = await StartHostAsync();
        var client = host.CreateRawClient();
        using var first = await client.GetAsync("/set?key=cart&value=3");
        var anonymous = Cookie(host, first);

        using var alice = await client.SendWithCookieAsync("/bind?user=alice", anonymous);
        var aliceCookie = Cookie(host, alice);
        using var again = await client.SendWithCookieAsync("/bind?user=alice", aliceCookie);
        using var bob = await client.SendWithCookieAsync("/bind?user=bob", aliceCookie);
        var bobCookie = Cookie(host, bob);

        Assert.Multiple(async () =>
        {
            Assert.That(host.SessionIdOf(aliceCookie), Is.Not.EqualTo(host.SessionIdOf(anonymous)), "from no user to a user renews the ID");
            Assert.That(again.SetCookies(host.CookieName), Is.Empty, "binding to the same user changes nothing");
            Assert.That(host.SessionIdOf(bobCookie), Is.Not.EqualTo(host.SessionIdOf(aliceCookie)), "a change of user renews the ID");
            Assert.That(await client.GetTextAsync("/user", bobCookie), Is.EqualTo("bob"));
            Assert.That(await client.GetTextAsync("/get?key=cart", bobCookie), Is.EqualTo("3"), "data kept");
            Assert.That(await client.GetTextAsync("/user", aliceCookie), Is.EqualTo("(none)"), "the previous ID is dead");
            Assert.That(await client.GetTextAsync("/user", anonymous), Is.EqualTo("(none)"));
        });
    }

    [Test]
    public async Task BindToUser_Null_UnbindsAndRenews()
    {
        await using var host = await StartHostAsync();
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/bind?user=alice");
        var boundId = await browser.GetTextAsync("/id");

        var unboundId = await browser.GetTextAsync("/bind?user=");

        Assert.Multiple(async () =>
        {
            Assert.That(unboundId, Is.Not.EqualTo(boundId));
            Assert.That(await browser.GetTextAsync("/user"), Is.EqualTo("(none)"));
            Assert.That(await browser.GetTextAsync("/id"), Is.EqualTo(unboundId));
        });
    }

    [Test]
    public async Task BindToUser_OnANewSession_StoresTheSessionEvenWithoutData()
    {
        await using var host = await StartHostAsync();
        var browser = host.CreateBrowser();

        await browser.GetTextAsync("/bind?user=alice");

        Assert.Multiple(async () =>
        {
            Assert.That(await browser.GetTextAsync("/user"), Is.EqualTo("alice"));
            Assert.That(await host.CountRowsAsync(), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task DeviceInfo_IsRecordedAtCreationAndRenewal_AndTheUserAgentTruncated()
    {
        await using var host = await StartHostAsync();
        var client = host.CreateRawClient();
        var manager = host.Services.GetRequiredService<ISessionManager>();
        var longAgent = "Agent/" + new string('x', 600);

        using var create = new HttpRequestMessage(HttpMethod.Get, "/bind?user=alice");
        create.Headers.TryAddWithoutValidation("User-Agent", longAgent);
        using var created = await client.SendAsync(create);
        var atCreation = (await manager.ListForUserAsync("alice")).Single();

        using var renew = new HttpRequestMessage(HttpMethod.Get, "/regenerate");
        renew.Headers.TryAddWithoutValidation("User-Agent", "Other/2.0");
        renew.Headers.TryAddWithoutValidation("Cookie", Cookie(host, created));
        using var renewed = await client.SendAsync(renew);
        var afterRenewal = (await manager.ListForUserAsync("alice")).Single();

        Assert.Multiple(() =>
        {
            Assert.That(atCreation.IpAddress, Is.EqualTo("127.0.0.1"));
            Assert.That(atCreation.UserAgent, Has.Length.EqualTo(256).And.StartsWith("Agent/xxx"));
            Assert.That(afterRenewal.UserAgent, Is.EqualTo("Other/2.0"));
            Assert.That(afterRenewal.Id, Is.Not.EqualTo(atCreation.Id));
        });
    }

    [Test]
    public async Task DeviceInfo_WhenRecordingIsOff_IsNotStored()
    {
        await using var host = await StartHostAsync(o => o.RecordDeviceInfo = false);
        await host.CreateBrowser().GetTextAsync("/bind?user=alice");

        var info = (await host.Services.GetRequiredService<ISessionManager>().ListForUserAsync("alice")).Single();

        Assert.Multiple(() =>
        {
            Assert.That(info.IpAddress, Is.Null);
            Assert.That(info.UserAgent, Is.Null);
        });
    }

    [Test]
    public async Task AbsoluteTimeout_EndsAnActiveSession_AndTheCleanerDeletesIt()
    {
        await using var host = await StartHostAsync(o =>
        {
            o.IdleTimeout = TimeSpan.FromMinutes(20);
            o.AbsoluteTimeout = TimeSpan.FromHours(1);
            o.TouchInterval = TimeSpan.Zero;
            o.CleanupInterval = TimeSpan.FromDays(1); // this test runs the cleaner itself
        });
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");
        var other = host.CreateBrowser();
        await other.GetTextAsync("/set?key=a&value=2");

        for (var minute = 10; minute < 60; minute += 10)
        {
            host.Time.Advance(TimeSpan.FromMinutes(10));
            Assert.That(await browser.GetTextAsync("/get?key=a"), Is.EqualTo("1"), $"alive at minute {minute}");
            await browser.GetTextAsync("/regenerate"); // renewing the ID does not reset the creation time
        }

        host.Time.Advance(TimeSpan.FromMinutes(11));
        var cleaner = host.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<SessionCleanupService>().Single();
        var deleted = await cleaner.RunOnceAsync(CancellationToken.None);

        Assert.Multiple(async () =>
        {
            Assert.That(deleted, Is.EqualTo(2), "both are over an hour old; the idle one is also idle");
            Assert.That(await browser.GetTextAsync("/get?key=a"), Is.EqualTo("(none)"));
        });
    }

    [Test]
    public async Task AbsoluteTimeout_TreatsTheSessionAsMissingOnLoad()
    {
        await using var host = await StartHostAsync(o =>
        {
            o.AbsoluteTimeout = TimeSpan.FromMinutes(30);
            o.TouchInterval = TimeSpan.Zero;
        });
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");

        for (var i = 0; i < 3; i++)
        {
            host.Time.Advance(TimeSpan.FromMinutes(9));
            Assert.That(await browser.GetTextAsync("/get?key=a"), Is.EqualTo("1"));
        }

        host.Time.Advance(TimeSpan.FromMinutes(4));
        Assert.That(await browser.GetTextAsync("/get?key=a"), Is.EqualTo("(none)"));
    }

    private static string Cookie(SessionTestHost host, HttpResponseMessage response)
    {
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        var value = response.SetCookieValue(host.CookieName);
        Assert.That(value, Is.Not.Null, "expected a session cookie");
        return $"{host.CookieName}={value}";
    }
}
