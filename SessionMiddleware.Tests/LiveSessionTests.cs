using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Ids;
using SessionMiddleware.Live;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// <see cref="IServerSideSession.Ended"/> and the registry behind it (what hub connections and circuits hold): the token
/// is cancelled by every end of the session, in this process or in another one on the same SQLite file, follows a new
/// ID of the same user, and ends with a change of user.
/// </summary>
[TestFixture]
public sealed class LiveSessionTests : TempFolderTest
{
    /// <summary>Generous: the end is pushed (well under a second here); this only bounds a broken push.</summary>
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);

    private readonly ConcurrentDictionary<string, CancellationToken> _held = new(StringComparer.Ordinal);

    private static FakeTimeProvider Now() => new(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));

    private void Endpoints(WebApplication app)
    {
        // Holds the session's Ended token under a name; "write" also stores a value (for a new session).
        app.MapGet("/hold", (HttpContext c, string name, bool? write) =>
        {
            _held[name] = c.GetServerSideSession().Ended;
            if (write == true)
            {
                c.Session.SetString("held", name);
            }

            return c.Session.Id;
        });
    }

    private Task<SessionTestHost> StartAsync(FakeTimeProvider? time = null, Action<ServerSideSessionOptions>? configure = null, string? keys = null) =>
        SessionTestHost.StartAsync(Folder.Path, configure, endpoints: Endpoints, time: time, keysFolder: keys);

    private static async Task<bool> EndsAsync(TimeSpan within, CancellationToken token)
    {
        var ended = new TaskCompletionSource();
        using var registration = token.Register(() => ended.TrySetResult());
        return await Task.WhenAny(ended.Task, Task.Delay(within, CancellationToken.None)) == ended.Task;
    }

    [Test]
    public async Task Ended_IsCancelled_WhenTheSessionIsRevoked()
    {
        await using var host = await StartAsync();
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");
        var id = await browser.GetTextAsync("/hold?name=a");
        Assert.That(_held["a"].IsCancellationRequested, Is.False, "a live session's token is not cancelled");

        await host.Services.GetRequiredService<ISessionManager>().RevokeAsync(id);

        Assert.That(_held["a"].IsCancellationRequested, Is.True, "cancelled by the time RevokeAsync returns");
    }

    [Test]
    public async Task Ended_OfANewSession_IsHeldOnceStored_AndCancelledWhenTheRequestStoresNothing()
    {
        await using var host = await StartAsync();
        var browser = host.CreateBrowser();
        var id = await browser.GetTextAsync("/hold?name=stored&write=true");
        await host.CreateBrowser().GetTextAsync("/hold?name=empty");

        Assert.Multiple(() =>
        {
            Assert.That(_held["stored"].IsCancellationRequested, Is.False, "the session the request created is live");
            Assert.That(_held["empty"].IsCancellationRequested, Is.True, "a request that stored no session: no session to wait for");
        });

        await browser.GetTextAsync("/abandon");
        Assert.That(_held["stored"].IsCancellationRequested, Is.True, "the created session's end (Abandon) reaches the token");
        Assert.That(id, Is.Not.Empty);
    }

    [Test]
    public async Task Ended_FollowsANewIdOfTheSameUser_AndEndsWithAChangeOfUser()
    {
        await using var host = await StartAsync();
        var manager = host.Services.GetRequiredService<ISessionManager>();
        var same = host.CreateBrowser();
        await same.GetTextAsync("/bind?user=alice");
        await same.GetTextAsync("/hold?name=same");
        var renewed = await same.GetTextAsync("/regenerate");
        await same.GetTextAsync("/get?key=x");

        var other = host.CreateBrowser();
        await other.GetTextAsync("/bind?user=alice");
        await other.GetTextAsync("/hold?name=other");
        await other.GetTextAsync("/bind?user=bob");

        Assert.Multiple(() =>
        {
            Assert.That(_held["same"].IsCancellationRequested, Is.False, "RegenerateId keeps the session (same user, new ID)");
            Assert.That(_held["other"].IsCancellationRequested, Is.True, "another user signing in on the browser ends what alice had open");
        });

        await manager.RevokeAsync(renewed);
        Assert.That(_held["same"].IsCancellationRequested, Is.True, "the token followed the session to its new ID");
    }

    [Test]
    public async Task Ended_IsCancelledAtIdleExpiry_UnlessTheSessionWasUsedMeanwhile()
    {
        var time = Now();
        await using var host = await StartAsync(time, o => o.IdleTimeout = TimeSpan.FromMinutes(20));
        var idle = host.CreateBrowser();
        await idle.GetTextAsync("/set?key=a&value=1");
        await idle.GetTextAsync("/hold?name=idle");
        var used = host.CreateBrowser();
        await used.GetTextAsync("/set?key=a&value=1");
        await used.GetTextAsync("/hold?name=used");

        // 19 minutes on, the second browser is used (a touch: its row lives 20 minutes more); the held expiry of both passes.
        time.Advance(TimeSpan.FromMinutes(19));
        await used.GetTextAsync("/get?key=a");
        var ended = await AdvanceUntilEndedAsync(time, TimeSpan.FromMinutes(2), _held["idle"]);

        Assert.Multiple(() =>
        {
            Assert.That(ended, Is.True, "the idle session's token is cancelled once its expiry has passed");
            Assert.That(_held["used"].IsCancellationRequested, Is.False, "a session used meanwhile is found extended, not ended");
        });
    }

    [Test]
    public async Task AHolderThatComesAfterTheEnd_FindsItEnded()
    {
        await using var host = await StartAsync();
        var browser = host.CreateBrowser();
        var id = await browser.GetTextAsync("/set?key=a&value=1").ContinueWith(_ => browser.GetTextAsync("/id")).Unwrap();
        Assert.That(SessionIds.TryParsePublicId(id, out var key), Is.True);
        await host.Services.GetRequiredService<ISessionManager>().RevokeAsync(id);

        // A connection whose request loaded the session just before the revoke is tied to it just after.
        using var lease = host.Services.GetRequiredService<LiveSessionRegistry>().Hold(key!, userId: null, DateTimeOffset.MaxValue);

        Assert.That(lease.HasEnded, Is.True);
    }

    [Test]
    public async Task AnEndInAnotherProcessOnTheSameFile_ReachesThisOnesHeldSessions()
    {
        // Two hosts on one file and one key ring: each has its own registry, so host A learns of B's ends only through the
        // changes table, as a second process would.
        var keys = Path.Combine(Folder.Path, "keys");
        await using var a = await StartAsync(keys: keys);
        await using var b = await SessionTestHost.StartAsync(Folder.Path, keysFolder: keys, endpoints: Endpoints);
        var managerB = b.Services.GetRequiredService<ISessionManager>();

        var revoked = a.CreateBrowser();
        await revoked.GetTextAsync("/bind?user=carol");
        var revokedId = await revoked.GetTextAsync("/hold?name=revoked");

        var cookies = new System.Net.CookieContainer();
        var onA = a.CreateBrowser(cookies);
        await onA.GetTextAsync("/bind?user=dave");
        await onA.GetTextAsync("/hold?name=renewed");
        var onB = b.CreateBrowser(cookies);
        var renewedId = await onB.GetTextAsync("/regenerate");

        var changedUser = a.CreateBrowser(cookies = new System.Net.CookieContainer());
        await changedUser.GetTextAsync("/bind?user=erin");
        await changedUser.GetTextAsync("/hold?name=changed");
        await b.CreateBrowser(cookies).GetTextAsync("/bind?user=frank");

        await managerB.RevokeAsync(revokedId);
        Assert.Multiple(async () =>
        {
            Assert.That(await EndsAsync(Prompt, _held["revoked"]), Is.True, "a revoke in the other process ends the session held here");
            Assert.That(await EndsAsync(Prompt, _held["changed"]), Is.True, "another user's sign-in there ends what erin had open here");
            Assert.That(_held["renewed"].IsCancellationRequested, Is.False, "a new ID of the same user there keeps it open here");
        });

        await managerB.RevokeAsync(renewedId);
        Assert.That(await EndsAsync(Prompt, _held["renewed"]), Is.True, "the session held here followed its new ID");
    }

    [Test]
    public async Task TheChangesTable_StaysBounded_WhereNoProcessHoldsAConnection()
    {
        // No connection held here: no feed runs, and the writer prunes the recorded ends itself.
        var time = Now();
        await using var host = await StartAsync(time);
        var manager = host.Services.GetRequiredService<ISessionManager>();
        async Task RevokeNewSessionsAsync(int count)
        {
            for (var i = 0; i < count; i++)
            {
                var browser = host.CreateBrowser();
                await browser.GetTextAsync("/set?key=a&value=1");
                await manager.RevokeAsync(await browser.GetTextAsync("/id"));
            }
        }

        await RevokeNewSessionsAsync(200);
        time.Advance(Storage.Sqlite.SqliteSessionStore.ChangeRetention + TimeSpan.FromMinutes(1));
        await RevokeNewSessionsAsync(Storage.Sqlite.SqliteSessionStore.PruneEvery);

        Assert.That(await host.CountRowsAsync("sessions_changes"), Is.LessThanOrEqualTo(Storage.Sqlite.SqliteSessionStore.PruneEvery), "the 200 ends older than the retention are gone");
    }

    /// <summary>Moves the clock a second at a time (the registry checks expiry every second of it) until the token is cancelled.</summary>
    private static async Task<bool> AdvanceUntilEndedAsync(FakeTimeProvider time, TimeSpan most, CancellationToken token)
    {
        for (var moved = TimeSpan.Zero; moved <= most && !token.IsCancellationRequested; moved += TimeSpan.FromSeconds(1))
        {
            time.Advance(TimeSpan.FromSeconds(1));
            await EndsAsync(TimeSpan.FromMilliseconds(20), token);
        }

        return token.IsCancellationRequested;
    }
}
