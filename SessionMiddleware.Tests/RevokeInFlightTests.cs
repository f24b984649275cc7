using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>A revoke takes effect at once, even on a request of that session in flight, over each store.</summary>
[LaneFixture(StoreKind.Sqlite)]
[LaneFixture(StoreKind.PostgreSql)]
public sealed class RevokeInFlightTests(StoreKind store) : TempFolderTest
{
    // A write or renewal that can no longer be applied answers 500, never a 200 for a dropped write; a read answers 200.
    [TestCase("/gated-write", 500)]
    [TestCase("/gated-renew", 500)]
    [TestCase("/gated-read", 200)]
    public async Task Revoke_WhileARequestOfThatSessionIsInFlight_TheRowNeverComesBack(string path, int status)
    {
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o => o.TouchInterval = TimeSpan.Zero, store: store, endpoints: app =>
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
            Assert.That(await host.CountRowsAsync(), Is.Zero, "the commit of the in-flight request wrote nothing");
            Assert.That(await manager.ListForUserAsync("alice"), Is.Empty);
            Assert.That(await browser.GetTextAsync("/get?key=a"), Is.EqualTo("(none)"));
            Assert.That(host.Logs.GetSnapshot().Count(r => r.Id.Name == "SessionGoneAtCommit"), Is.EqualTo(1));
        });
    }
}
