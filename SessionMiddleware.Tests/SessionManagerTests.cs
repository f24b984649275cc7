using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>Listing and revoking a user's sessions; a revoke takes effect at once, even on a request in flight.</summary>
public sealed class SessionManagerTests : TempFolderTest
{
    [Test]
    public async Task ListForUser_ReturnsThatUsersLiveSessions_MostRecentlyUsedFirst()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o => o.TouchInterval = TimeSpan.Zero);
        var laptop = host.CreateBrowser();
        var phone = host.CreateBrowser();
        var stranger = host.CreateBrowser();
        var laptopId = await laptop.GetTextAsync("/bind?user=alice");
        host.Time.Advance(TimeSpan.FromSeconds(10));
        var phoneId = await phone.GetTextAsync("/bind?user=alice");
        await stranger.GetTextAsync("/bind?user=bob");
        host.Time.Advance(TimeSpan.FromSeconds(10));
        await laptop.GetTextAsync("/nothing");

        var sessions = await host.Services.GetRequiredService<ISessionManager>().ListForUserAsync("alice");

        Assert.Multiple(() =>
        {
            Assert.That(sessions.Select(s => s.Id), Is.EqualTo(new[] { laptopId, phoneId }));
            Assert.That(sessions.Select(s => s.UserId), Is.All.EqualTo("alice"));
            Assert.That(sessions[0].LastAccessAt, Is.GreaterThan(sessions[1].LastAccessAt));
            Assert.That(sessions[1].CreatedAt, Is.GreaterThan(sessions[0].CreatedAt));
        });
    }

    [Test]
    public async Task Revoke_EndsTheSessionAtItsNextRequest()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/bind?user=alice");
        await browser.GetTextAsync("/set?key=role&value=admin");
        var id = await browser.GetTextAsync("/id");
        var manager = host.Services.GetRequiredService<ISessionManager>();

        var revoked = await manager.RevokeAsync(id);
        var again = await manager.RevokeAsync(id);

        Assert.Multiple(async () =>
        {
            Assert.That(revoked, Is.True);
            Assert.That(again, Is.False, "nothing left to revoke");
            Assert.That(await browser.GetTextAsync("/get?key=role"), Is.EqualTo("(none)"));
            Assert.That(await browser.GetTextAsync("/user"), Is.EqualTo("(none)"));
            Assert.That(await manager.ListForUserAsync("alice"), Is.Empty);
        });
    }

    [Test]
    public async Task Query_PagesWithAContinuationToken_UntilTheLastPageHasNone_AndCountAgrees()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path);
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var browser = host.CreateBrowser();
            ids.Add(await browser.GetTextAsync(i % 2 == 0 ? "/bind?user=alice" : "/set?key=k&value=v"));
            ids[^1] = await browser.GetTextAsync("/id");
            host.Time.Advance(TimeSpan.FromSeconds(1));
        }

        var manager = host.Services.GetRequiredService<ISessionManager>();
        var first = await manager.QueryAsync(SessionFilter.All, pageSize: 2);
        var second = await manager.QueryAsync(SessionFilter.All, pageSize: 2, first.ContinuationToken);
        var third = await manager.QueryAsync(SessionFilter.All, pageSize: 2, second.ContinuationToken);
        var exact = await manager.QueryAsync(new SessionFilter { IsBound = true }, pageSize: 3);

        Assert.Multiple(async () =>
        {
            Assert.That(first.Sessions.Concat(second.Sessions).Concat(third.Sessions).Select(s => s.Id), Is.EqualTo(Enumerable.Reverse(ids)));
            Assert.That(first.ContinuationToken, Is.Not.Null);
            Assert.That(third.ContinuationToken, Is.Null, "the last page");
            Assert.That(exact.Sessions, Has.Count.EqualTo(3));
            Assert.That(exact.ContinuationToken, Is.Null, "a full last page says it is the last");
            Assert.That(await manager.CountAsync(new SessionFilter { UserId = "alice" }), Is.EqualTo(3));
            Assert.That(await manager.CountAsync(new SessionFilter { IsBound = false }), Is.EqualTo(2));
        });
        Assert.ThrowsAsync<ArgumentException>(() => manager.QueryAsync(SessionFilter.All, 2, "garbage"));
        Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => manager.QueryAsync(SessionFilter.All, 0));
    }

    [TestCase("")]
    [TestCase("not-an-id")]
    [TestCase("zz00000000000000000000000000000000000000000000000000000000000000")]
    [TestCase("0000000000000000000000000000000000000000000000000000000000000000")]
    public async Task Revoke_OfAnUnknownOrMalformedId_ReturnsFalse(string id)
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path);

        Assert.That(await host.Services.GetRequiredService<ISessionManager>().RevokeAsync(id), Is.False);
    }

    [Test]
    public async Task RevokeAllForUser_ExceptTheCurrentOne_SignsOutEverywhereElse()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path);
        var browsers = Enumerable.Range(0, 4).Select(_ => host.CreateBrowser()).ToList();
        foreach (var b in browsers)
        {
            await b.GetTextAsync("/bind?user=alice");
        }

        var bob = host.CreateBrowser();
        await bob.GetTextAsync("/bind?user=bob");
        var current = await browsers[0].GetTextAsync("/id");

        var count = await host.Services.GetRequiredService<ISessionManager>().RevokeAllForUserAsync("alice", current);

        Assert.Multiple(async () =>
        {
            Assert.That(count, Is.EqualTo(3));
            Assert.That(await browsers[0].GetTextAsync("/user"), Is.EqualTo("alice"));
            for (var i = 1; i < browsers.Count; i++)
            {
                Assert.That(await browsers[i].GetTextAsync("/user"), Is.EqualTo("(none)"));
            }

            Assert.That(await bob.GetTextAsync("/user"), Is.EqualTo("bob"), "other users are untouched");
        });
    }

    [Test]
    public async Task RevokeAllForUser_ExceptTheCurrentOne_AfterRegenerateIdInTheSameRequest_KeepsTheCallersSession()
    {
        // "Password changed: sign out my other devices": renew this browser's ID, then end every other session.
        await using var host = await SessionTestHost.StartAsync(Folder.Path, endpoints: app =>
            app.MapGet("/password-changed", async (HttpContext c, ISessionManager manager) =>
            {
                var session = c.GetServerSideSession();
                session.RegenerateId();
                var ended = await manager.RevokeAllForUserAsync(session.UserId!, exceptSessionId: session.Id);
                return ended.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }));
        var mine = host.CreateBrowser();
        var others = new[] { host.CreateBrowser(), host.CreateBrowser() };
        await mine.GetTextAsync("/bind?user=alice");
        await mine.GetTextAsync("/set?key=cart&value=3");
        foreach (var b in others)
        {
            await b.GetTextAsync("/bind?user=alice");
        }

        var before = await mine.GetTextAsync("/id");
        var ended = await mine.GetTextAsync("/password-changed");

        Assert.Multiple(async () =>
        {
            Assert.That(ended, Is.EqualTo("2"), "the two other sessions, not the caller's");
            Assert.That(await mine.GetTextAsync("/user"), Is.EqualTo("alice"), "the caller stays signed in");
            Assert.That(await mine.GetTextAsync("/get?key=cart"), Is.EqualTo("3"), "with its data");
            Assert.That(await mine.GetTextAsync("/id"), Is.Not.EqualTo(before), "under its new ID");
            foreach (var b in others)
            {
                Assert.That(await b.GetTextAsync("/user"), Is.EqualTo("(none)"));
            }

            Assert.That(host.CountRows(), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task RevokeAllForUser_WithoutException_EndsThemAll()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path);
        var a = host.CreateBrowser();
        var b = host.CreateBrowser();
        await a.GetTextAsync("/bind?user=alice");
        await b.GetTextAsync("/bind?user=alice");

        var count = await host.Services.GetRequiredService<ISessionManager>().RevokeAllForUserAsync("alice");

        Assert.Multiple(async () =>
        {
            Assert.That(count, Is.EqualTo(2));
            Assert.That(host.CountRows(), Is.Zero);
            Assert.That(await a.GetTextAsync("/user"), Is.EqualTo("(none)"));
        });
    }

    // A write or renewal that can no longer be applied answers 500, never a 200 for a dropped write; a read answers 200.
    [TestCase("/gated-write", 500)]
    [TestCase("/gated-renew", 500)]
    [TestCase("/gated-read", 200)]
    public async Task Revoke_WhileARequestOfThatSessionIsInFlight_TheRowNeverComesBack(string path, int status)
    {
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o => o.TouchInterval = TimeSpan.Zero, endpoints: app =>
        {
            app.MapGet("/gated-write", async (HttpContext c) =>
            {
                entered.SetResult();
                await gate.Task;
                c.Session.SetString("written", "after revoke");
                return "ok";
            });
            app.MapGet("/gated-renew", async (HttpContext c) =>
            {
                entered.SetResult();
                await gate.Task;
                c.GetServerSideSession().RegenerateId();
                return "ok";
            });
            app.MapGet("/gated-read", async (HttpContext c) =>
            {
                entered.SetResult();
                await gate.Task;
                return c.Session.GetString("a") ?? "(none)";
            });
        });
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/bind?user=alice");
        await browser.GetTextAsync("/set?key=a&value=1");
        var id = await browser.GetTextAsync("/id");
        var manager = host.Services.GetRequiredService<ISessionManager>();

        var inFlight = browser.GetAsync(path);
        await entered.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.That(await manager.RevokeAsync(id), Is.True);
        host.Time.Advance(TimeSpan.FromSeconds(5));
        gate.SetResult();
        using var response = await inFlight;

        Assert.Multiple(async () =>
        {
            Assert.That((int)response.StatusCode, Is.EqualTo(status));
            Assert.That(host.CountRows(), Is.Zero, "the commit of the in-flight request wrote nothing");
            Assert.That(await manager.ListForUserAsync("alice"), Is.Empty);
            Assert.That(await browser.GetTextAsync("/get?key=a"), Is.EqualTo("(none)"));
            Assert.That(host.Logs.GetSnapshot().Count(r => r.Id.Name == "SessionGoneAtCommit"), Is.EqualTo(1));
        });
    }
}
