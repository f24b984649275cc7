using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>Listing and revoking a user's sessions; a revoke takes effect at once (on a request in flight: <see cref="RevokeInFlightTests"/>).</summary>
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
    public async Task ListForUser_IsCappedAt1000_TheMostRecentlyUsed_AndQueryPagesThroughTheRest()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path);
        var now = host.Time.GetUtcNow().ToUnixTimeSeconds();
        using (var connection = host.OpenDatabase())
        using (var transaction = connection.BeginTransaction())
        {
            using var command = connection.CreateCommand();
            command.CommandText = "INSERT INTO sessions (id, user_id, data, created_at, last_access, version, expires_at) VALUES ($id, 'many', x'0100', $t, $t, 1, $e)";
            var id = command.Parameters.Add("$id", Microsoft.Data.Sqlite.SqliteType.Blob);
            var t = command.Parameters.Add("$t", Microsoft.Data.Sqlite.SqliteType.Integer);
            command.Parameters.AddWithValue("$e", now + 600);
            for (var i = 0; i < 1_005; i++)
            {
                id.Value = System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);
                t.Value = now - i; // the first inserted is the most recently used
                command.ExecuteNonQuery();
            }

            transaction.Commit();
        }

        var manager = host.Services.GetRequiredService<ISessionManager>();
        var listed = await manager.ListForUserAsync("many");
        var all = new List<SessionInfo>();
        string? token = null;
        do
        {
            var page = await manager.QueryAsync(new SessionFilter { UserId = "many" }, pageSize: 1000, continuationToken: token);
            all.AddRange(page.Sessions);
            token = page.ContinuationToken;
        }
        while (token is not null);

        Assert.Multiple(() =>
        {
            Assert.That(listed, Has.Count.EqualTo(1000));
            Assert.That(listed[0].LastAccessAt, Is.EqualTo(host.Time.GetUtcNow()));
            Assert.That(listed.Select(s => s.LastAccessAt), Is.Ordered.Descending);
            Assert.That(all, Has.Count.EqualTo(1_005), "the paged query reaches every session");
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
}
