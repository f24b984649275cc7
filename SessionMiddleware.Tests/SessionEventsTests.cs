using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SessionMiddleware.Cleanup;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// <see cref="ServerSideSessionOptions.Events"/> through real requests over a SQLite file: each event raised exactly once
/// per session created, renewed or ended, with the reason, the user, the public ID and the time; a throwing handler is
/// harmless. The cleaner's side over both stores is in <see cref="CleanupRunTests"/>.
/// </summary>
public sealed class SessionEventsTests : TempFolderTest
{
    private sealed record Raised(string Event, string SessionId, string? UserId, string? Reason, string? PreviousId, DateTimeOffset Time, bool InRequest);

    private readonly ConcurrentQueue<Raised> _raised = new();

    [SetUp]
    public void ClearRaised() => _raised.Clear();

    private void Record(ServerSideSessionOptions o)
    {
        o.Events.OnCreated = c => Add(new Raised("created", c.SessionId, c.UserId, null, null, c.Time, c.HttpContext is not null));
        o.Events.OnRenewed = c => Add(new Raised("renewed", c.SessionId, c.UserId, null, c.PreviousSessionId, c.Time, c.HttpContext is not null));
        o.Events.OnEnded = c => Add(new Raised("ended", c.SessionId, c.UserId, c.Reason, null, c.Time, c.HttpContext is not null));
    }

    private Task Add(Raised raised)
    {
        _raised.Enqueue(raised);
        return Task.CompletedTask;
    }

    private List<Raised> Of(string name) => [.. _raised.Where(r => r.Event == name)];

    [Test]
    public async Task Created_IsRaisedOnce_AtTheFirstWrite_WithTheRequestAndTheTime()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, Record);
        var browser = host.CreateBrowser();

        await browser.GetTextAsync("/get?key=a");          // nothing stored yet
        await browser.GetTextAsync("/set?key=a&value=1");
        await browser.GetTextAsync("/set?key=b&value=2");
        var id = await browser.GetTextAsync("/id");

        Assert.That(_raised, Is.EqualTo(new[] { new Raised("created", id, null, null, null, host.Time.GetUtcNow(), true) }));
    }

    [Test]
    public async Task Renewed_IsRaisedOnce_WithTheOldAndNewIds_AndTheUserItWasBoundTo()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, Record);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");
        var before = await browser.GetTextAsync("/id");

        var after = await browser.GetTextAsync("/bind?user=alice");
        await browser.GetTextAsync("/get?key=a");

        Assert.Multiple(() =>
        {
            Assert.That(after, Is.Not.EqualTo(before));
            Assert.That(Of("renewed"), Is.EqualTo(new[] { new Raised("renewed", after, "alice", null, before, host.Time.GetUtcNow(), true) }));
            Assert.That(Of("created"), Has.Count.EqualTo(1));
            Assert.That(Of("ended"), Is.Empty, "a renewal ends no session");
        });
    }

    [Test]
    public async Task Abandon_RaisesEndedOnce_WithReasonAbandoned_AndTheUserTheRowWasBoundTo()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, Record);
        var browser = host.CreateBrowser();
        var id = await browser.GetTextAsync("/bind?user=bob");

        await browser.GetTextAsync("/abandon");
        await browser.GetTextAsync("/abandon");            // a new, empty session: nothing stored, nothing ended

        Assert.That(Of("ended"), Is.EqualTo(new[] { new Raised("ended", id, "bob", SessionEndReason.Abandoned, null, host.Time.GetUtcNow(), true) }));
    }

    [Test]
    public async Task SignOut_ThroughTheTicketStore_RaisesEndedOnce_WithReasonSignedOut()
    {
        await using var host = await AuthTestApp.StartAsync(Folder.Path, configure: Record);
        var erin = host.CreateBrowser();
        await erin.GetTextAsync("/signin?user=erin");
        var stored = (await host.Services.GetRequiredService<ISessionManager>().ListForUserAsync("erin")).Single();

        await erin.GetTextAsync("/signout");
        await erin.GetTextAsync("/whoami");

        Assert.That(Of("ended"), Is.EqualTo(new[] { new Raised("ended", stored.Id, "erin", SessionEndReason.SignedOut, null, host.Time.GetUtcNow(), true) }));
    }

    [Test]
    public async Task Revoke_RaisesEndedOnce_WithReasonRevoked_OutsideARequest()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, Record);
        var browser = host.CreateBrowser();
        var id = await browser.GetTextAsync("/bind?user=carol");
        var manager = host.Services.GetRequiredService<ISessionManager>();

        var revoked = await manager.RevokeAsync(id);
        var again = await manager.RevokeAsync(id);
        await browser.GetTextAsync("/get?key=a");

        Assert.Multiple(() =>
        {
            Assert.That((revoked, again), Is.EqualTo((true, false)));
            Assert.That(Of("ended"), Is.EqualTo(new[] { new Raised("ended", id, "carol", SessionEndReason.Revoked, null, host.Time.GetUtcNow(), false) }));
        });
    }

    [TestCase(false)]
    [TestCase(true)]
    public async Task Revoke_FromARequest_RaisesEndedWithThatRequest_WithOrWithoutAnHttpContextAccessor(bool accessor)
    {
        // AddServerSideSessions registers no IHttpContextAccessor; the manager knows the request it is called from
        // either way (through the middleware without one, through the accessor with one).
        await using var host = await SessionTestHost.StartAsync(Folder.Path, Record, endpoints: app =>
            app.MapGet("/revoke", async (string id, ISessionManager manager) => (await manager.RevokeAsync(id)).ToString()),
            services: s =>
            {
                if (accessor)
                {
                    s.Services.AddHttpContextAccessor();
                }
            });
        var victim = host.CreateBrowser();
        var id = await victim.GetTextAsync("/bind?user=carol");

        var answer = await host.CreateBrowser().GetTextAsync($"/revoke?id={id}");

        Assert.Multiple(() =>
        {
            Assert.That(host.Services.GetService<Microsoft.AspNetCore.Http.IHttpContextAccessor>(), accessor ? Is.Not.Null : Is.Null);
            Assert.That(answer, Is.EqualTo("True"));
            Assert.That(Of("ended"), Is.EqualTo(new[] { new Raised("ended", id, "carol", SessionEndReason.Revoked, null, host.Time.GetUtcNow(), true) }));
        });
    }

    [Test]
    public async Task RevokeAllForUser_RaisesEndedOncePerSession_BatchByBatch_SparingTheExceptedOne()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o =>
        {
            Record(o);
            o.CleanupBatchSize = 2;
        });
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            ids.Add(await host.CreateBrowser().GetTextAsync("/bind?user=dave"));
        }

        await host.CreateBrowser().GetTextAsync("/bind?user=eve");

        var count = await host.Services.GetRequiredService<ISessionManager>().RevokeAllForUserAsync("dave", exceptSessionId: ids[0]);

        Assert.Multiple(async () =>
        {
            Assert.That(count, Is.EqualTo(4));
            Assert.That(Of("ended").Select(e => e.SessionId), Is.EquivalentTo(ids.Skip(1)), "once per session, in batches of 2");
            Assert.That(Of("ended").Select(e => (e.UserId, e.Reason)), Is.All.EqualTo(("dave", SessionEndReason.Revoked)));
            Assert.That((await host.Services.GetRequiredService<ISessionManager>().ListForUserAsync("dave")).Select(s => s.Id), Is.EqualTo(new[] { ids[0] }));
        });
    }

    [Test]
    public async Task ExpiredSession_IsLeftByItsLoad_AndTheCleanerRaisesItsEndOnce()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o =>
        {
            Record(o);
            o.IdleTimeout = TimeSpan.FromMinutes(20);
            o.CleanupInterval = TimeSpan.FromDays(1);
        });
        var browser = host.CreateBrowser();
        var id = await browser.GetTextAsync("/bind?user=frank");
        host.Time.Advance(TimeSpan.FromMinutes(21));
        var cleaner = host.Services.GetServices<IHostedService>().OfType<SessionCleanupService>().Single();

        var afterExpiry = await browser.GetTextAsync("/user");
        var rowsBeforeCleanup = host.CountRows();
        var deleted = await cleaner.RunOnceAsync(CancellationToken.None);
        var again = await cleaner.RunOnceAsync(CancellationToken.None);

        Assert.Multiple(() =>
        {
            Assert.That(afterExpiry, Is.EqualTo("(none)"));
            Assert.That(rowsBeforeCleanup, Is.EqualTo(1), "the load left the expired row to the cleaner");
            Assert.That((deleted, again), Is.EqualTo((1, 0)));
            Assert.That(Of("ended"), Is.EqualTo(new[] { new Raised("ended", id, "frank", SessionEndReason.IdleTimeout, null, host.Time.GetUtcNow(), false) }));
        });
    }

    [Test]
    public async Task ThrowingHandlers_AreLoggedAsWarnings_AndTheRequestsSucceed()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o =>
        {
            o.Events.OnCreated = _ => throw new InvalidOperationException("created handler bug");
            o.Events.OnRenewed = _ => Task.FromException(new InvalidOperationException("renewed handler bug"));
            o.Events.OnEnded = async _ =>
            {
                await Task.Yield();
                throw new InvalidOperationException("ended handler bug");
            };
        });
        var browser = host.CreateBrowser();

        await browser.GetTextAsync("/set?key=a&value=1");
        var renewed = await browser.GetTextAsync("/regenerate");
        var value = await browser.GetTextAsync("/get?key=a");
        var idAfterRenewal = await browser.GetTextAsync("/id");
        await browser.GetTextAsync("/abandon");

        var warnings = host.Logs.GetSnapshot().Where(r => r.Id.Name == "SessionEventHandlerFailed").ToList();
        Assert.Multiple(() =>
        {
            Assert.That(value, Is.EqualTo("1"), "the data survived the failing handlers");
            Assert.That(idAfterRenewal, Is.EqualTo(renewed));
            Assert.That(host.CountRows(), Is.Zero, "the abandon was committed");
            Assert.That(warnings.Select(w => (w.Level, w.Id.Id)), Is.EqualTo(Enumerable.Repeat((LogLevel.Warning, 70), 3)));
            Assert.That(warnings.Select(w => w.Exception?.Message), Is.EquivalentTo(new[] { "created handler bug", "renewed handler bug", "ended handler bug" }));
        });
    }
}
