using System.Diagnostics.Metrics;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Hosting;
using SessionMiddleware.Cleanup;
using SessionMiddleware.Storage.Sqlite;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>The instruments of <see cref="ServerSideSessionDiagnostics.MeterName"/>, recorded through real requests.</summary>
public sealed class MetricsTests : TempFolderTest
{
    private static MetricCollector<T> Collect<T>(SessionTestHost host, string instrument)
        where T : struct =>
        new(host.Services.GetRequiredService<IMeterFactory>(), ServerSideSessionDiagnostics.MeterName, instrument);

    private static long Sum(MetricCollector<long> collector, string? tag = null, string? value = null) =>
        collector.GetMeasurementSnapshot()
            .Where(m => tag is null || (m.Tags.TryGetValue(tag, out var v) && Equals(v, value)))
            .Sum(m => m.Value);

    private static void AssertNoIdentifyingTags<T>(MetricCollector<T> collector)
        where T : struct
    {
        string[] allowed = ["reason", "outcome", "db.system.name", "db.operation.name", "error.type"];
        foreach (var measurement in collector.GetMeasurementSnapshot())
        {
            Assert.That(measurement.Tags.Keys, Is.SubsetOf(allowed));
        }
    }

    [Test]
    public async Task FirstWriteThenUpdate_CountsOneSessionCreatedAndTwoCommits_AndTimesTheStoreCalls()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path);
        using var created = Collect<long>(host, ServerSideSessionDiagnostics.SessionsCreated);
        using var commits = Collect<long>(host, ServerSideSessionDiagnostics.Commits);
        using var durations = Collect<double>(host, ServerSideSessionDiagnostics.StoreOperationDuration);
        using var batches = Collect<int>(host, ServerSideSessionDiagnostics.WriteBatchSize);
        var browser = host.CreateBrowser();

        await browser.GetTextAsync("/set?key=a&value=1");
        await browser.GetTextAsync("/set?key=a&value=2");

        var operations = durations.GetMeasurementSnapshot()
            .Select(m => (string)m.Tags["db.operation.name"]!)
            .ToList();
        Assert.Multiple(() =>
        {
            Assert.That(Sum(created), Is.EqualTo(1));
            Assert.That(Sum(commits, "outcome", "committed"), Is.EqualTo(2));
            Assert.That(operations, Is.EquivalentTo(new[] { "create", "load", "update" }));
            Assert.That(durations.GetMeasurementSnapshot().Select(m => m.Tags["db.system.name"]), Has.All.EqualTo("sqlite"));
            Assert.That(durations.GetMeasurementSnapshot().Select(m => m.Value), Has.All.GreaterThanOrEqualTo(0));
            Assert.That(batches.GetMeasurementSnapshot().Sum(m => m.Value), Is.EqualTo(2), "the create and the update, each in a group transaction");
        });
        AssertNoIdentifyingTags(commits);
        AssertNoIdentifyingTags(durations);
    }

    [Test]
    public async Task RequestsThatOnlyRead_RecordNoCommit()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path);
        using var commits = Collect<long>(host, ServerSideSessionDiagnostics.Commits);
        var browser = host.CreateBrowser();

        await browser.GetTextAsync("/get?key=a");
        await browser.GetTextAsync("/nothing");

        Assert.That(commits.GetMeasurementSnapshot(), Is.Empty);
    }

    [TestCase(false, 2)]
    [TestCase(true, 3)]
    public async Task CommitAfterAConcurrentCommit_CountsMergedAfterConflict_AndMergesWithoutReadingTheRowAgain_UnlessItChangedElsewhere(bool writtenElsewhereMeanwhile, int loads)
    {
        var loaded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await SessionTestHost.StartAsync(Folder.Path, endpoints: app => app.MapGet("/slowset", async (HttpContext c) =>
        {
            loaded.TrySetResult();
            await release.Task;
            c.Session.SetString("slow", "1");
            return "ok";
        }));
        using var durations = Collect<double>(host, ServerSideSessionDiagnostics.StoreOperationDuration);
        using var commits = Collect<long>(host, ServerSideSessionDiagnostics.Commits);
        var client = host.CreateRawClient();
        using var first = await client.GetAsync("/set?key=a&value=1");
        var cookie = $"{host.CookieName}={first.SetCookieValue(host.CookieName)}";

        var slow = client.GetTextAsync("/slowset", cookie);
        await loaded.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await client.GetTextAsync("/set?key=b&value=2", cookie);
        if (writtenElsewhereMeanwhile)
        {
            // Another process (a store beside the middleware's) writes the row again: what this process remembers is stale.
            var store = SessionTestHost.RealStore(host.Services);
            var key = Convert.FromHexString(host.SessionIdOf(cookie));
            var row = await store.LoadAsync(key);
            Assert.That((await store.UpdateAsync(key, row!.Data, row.Version)).Status, Is.EqualTo(SessionUpdateStatus.Committed));
            await ((IAsyncDisposable)store).DisposeAsync();
        }

        release.SetResult();
        Assert.That(await slow, Is.EqualTo("ok"));

        Assert.Multiple(async () =>
        {
            Assert.That(await client.GetTextAsync("/get?key=a", cookie), Is.EqualTo("1"));
            Assert.That(await client.GetTextAsync("/get?key=b", cookie), Is.EqualTo("2"), "the fast write survived the slow one");
            Assert.That(await client.GetTextAsync("/get?key=slow", cookie), Is.EqualTo("1"));
            Assert.That(durations.GetMeasurementSnapshot().Count(m => Equals(m.Tags["db.operation.name"], "load")), Is.EqualTo(loads + 3), "each request's load, and the slow commit's re-read only when the row changed elsewhere");
            Assert.That(Sum(commits, "outcome", "committed"), Is.EqualTo(2), "the create and the fast write ...");
            Assert.That(Sum(commits, "outcome", "merged_after_conflict"), Is.EqualTo(1), "... then the slow one, merged");
        });
    }

    [Test]
    public async Task RegenerateId_CountsARenewal()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path);
        using var renewed = Collect<long>(host, ServerSideSessionDiagnostics.SessionsRenewed);
        using var durations = Collect<double>(host, ServerSideSessionDiagnostics.StoreOperationDuration);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");

        await browser.GetTextAsync("/regenerate");

        Assert.Multiple(() =>
        {
            Assert.That(Sum(renewed), Is.EqualTo(1));
            Assert.That(durations.GetMeasurementSnapshot().Select(m => m.Tags["db.operation.name"]), Does.Contain("renew"));
        });
    }

    [Test]
    public async Task AbandonAndRevoke_CountEndedSessionsByReason_AndTheRevokedCookieIsAnUnknownSession()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path);
        using var ended = Collect<long>(host, ServerSideSessionDiagnostics.SessionsEnded);
        using var rejected = Collect<long>(host, ServerSideSessionDiagnostics.CookiesRejected);
        var abandoning = host.CreateBrowser();
        await abandoning.GetTextAsync("/set?key=a&value=1");
        var revoked = host.CreateBrowser();
        await revoked.GetTextAsync("/set?key=a&value=1");
        var revokedId = await revoked.GetTextAsync("/id");

        await abandoning.GetTextAsync("/abandon");
        var found = await host.Services.GetRequiredService<ISessionManager>().RevokeAsync(revokedId);
        await revoked.GetTextAsync("/get?key=a");

        Assert.Multiple(() =>
        {
            Assert.That(found, Is.True);
            Assert.That(Sum(ended, "reason", "abandoned"), Is.EqualTo(1));
            Assert.That(Sum(ended, "reason", "revoked"), Is.EqualTo(1));
            Assert.That(Sum(ended), Is.EqualTo(2));
            Assert.That(Sum(rejected, "reason", "unknown_session"), Is.EqualTo(1));
        });
        AssertNoIdentifyingTags(ended);
    }

    [Test]
    public async Task SignOutAndRevokeAllForUser_CountEndedSessionsAsSignedOutAndRevoked()
    {
        await using var host = await AuthTestApp.StartAsync(Folder.Path);
        using var ended = Collect<long>(host, ServerSideSessionDiagnostics.SessionsEnded);
        var signingOut = host.CreateBrowser();
        await signingOut.GetTextAsync("/signin?user=erin");
        var revoked = host.CreateBrowser();
        await revoked.GetTextAsync("/signin?user=frank");
        await revoked.GetTextAsync("/signin?user=frank");

        await signingOut.GetTextAsync("/signout");
        var revokedCount = await host.CreateBrowser().GetTextAsync("/revoke?user=frank");

        Assert.Multiple(() =>
        {
            Assert.That(Sum(ended, "reason", "signed_out"), Is.EqualTo(1));
            Assert.That(revokedCount, Is.EqualTo("1"));
            Assert.That(Sum(ended, "reason", "revoked"), Is.EqualTo(long.Parse(revokedCount, System.Globalization.CultureInfo.InvariantCulture)));
            Assert.That(Sum(ended, "reason", "abandoned"), Is.Zero);
        });
    }

    [Test]
    public async Task CookieOfAnotherKeyRing_IsRejectedAsUnprotectFailed_AndGarbageAsMalformed()
    {
        var otherFolder = Directory.CreateDirectory(Path.Combine(Folder.Path, "other")).FullName;
        await using var other = await SessionTestHost.StartAsync(otherFolder);
        using var fromOther = await other.CreateRawClient().GetAsync("/set?key=a&value=1");
        var otherCookie = fromOther.SetCookieValue(other.CookieName);
        await using var host = await SessionTestHost.StartAsync(Folder.Path);
        using var rejected = Collect<long>(host, ServerSideSessionDiagnostics.CookiesRejected);
        var client = host.CreateRawClient();

        await client.GetTextAsync("/get?key=a", $"{host.CookieName}={otherCookie}");
        await client.GetTextAsync("/get?key=a", $"{host.CookieName}=%%%");

        Assert.Multiple(() =>
        {
            Assert.That(Sum(rejected, "reason", "unprotect_failed"), Is.EqualTo(1));
            Assert.That(Sum(rejected, "reason", "malformed"), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task Cleaner_CountsExpiredSessionsByIdleOrAbsoluteTimeout_ItsDurationAndTheStoredGauge()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o =>
        {
            o.IdleTimeout = TimeSpan.FromMinutes(20);
            o.AbsoluteTimeout = TimeSpan.FromMinutes(30);
            o.CleanupInterval = TimeSpan.FromDays(1);
        });
        using var ended = Collect<long>(host, ServerSideSessionDiagnostics.SessionsEnded);
        using var rowsDeleted = Collect<long>(host, ServerSideSessionDiagnostics.CleanupRowsDeleted);
        using var duration = Collect<double>(host, ServerSideSessionDiagnostics.CleanupDuration);
        using var storeCalls = Collect<double>(host, ServerSideSessionDiagnostics.StoreOperationDuration);
        using var stored = Collect<long>(host, ServerSideSessionDiagnostics.SessionsStored);
        var busy = host.CreateBrowser();
        await busy.GetTextAsync("/set?key=a&value=1");
        var cleaner = host.Services.GetServices<IHostedService>().OfType<SessionCleanupService>().Single();

        host.Time.Advance(TimeSpan.FromMinutes(5));
        await host.CreateBrowser().GetTextAsync("/set?key=a&value=1");      // then idle: expires 20 minutes later
        host.Time.Advance(TimeSpan.FromMinutes(10));
        await busy.GetTextAsync("/get?key=a");                               // used: its expiry is now its 30-minute cap
        host.Time.Advance(TimeSpan.FromMinutes(12));
        var first = await cleaner.RunOnceAsync(CancellationToken.None);      // 27 minutes: only the idle one is over
        stored.RecordObservableInstruments();
        var storedAfterFirst = stored.LastMeasurement?.Value;
        host.Time.Advance(TimeSpan.FromMinutes(4));
        var second = await cleaner.RunOnceAsync(CancellationToken.None);     // 31 minutes: the busy one reached its cap

        Assert.Multiple(() =>
        {
            Assert.That(first + second, Is.EqualTo(2));
            Assert.That(Sum(rowsDeleted), Is.EqualTo(2));
            Assert.That(Sum(ended, "reason", SessionEndReason.IdleTimeout), Is.EqualTo(1));
            Assert.That(Sum(ended, "reason", SessionEndReason.AbsoluteTimeout), Is.EqualTo(1));
            Assert.That(ended.GetMeasurementSnapshot().Select(m => m.Tags["reason"]), Is.EqualTo(new[] { "idle_timeout", "absolute_timeout" }));
            Assert.That(duration.GetMeasurementSnapshot(), Has.Count.EqualTo(2));
            Assert.That(storeCalls.GetMeasurementSnapshot().Select(m => m.Tags["db.operation.name"]), Does.Contain("cleanup"));
            Assert.That(storedAfterFirst, Is.EqualTo(1), "the session used 12 minutes before the first run was still live");
        });
    }

    [Test]
    public async Task StoredGauge_BetweenCleanerRuns_FollowsTheSessionsThisServerCreatesAndEnds()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o => o.CleanupInterval = TimeSpan.FromDays(1));
        using var stored = Collect<long>(host, ServerSideSessionDiagnostics.SessionsStored);
        var cleaner = host.Services.GetServices<IHostedService>().OfType<SessionCleanupService>().Single();
        await cleaner.RunOnceAsync(CancellationToken.None);      // a run at startup: no session yet
        stored.RecordObservableInstruments();
        var atStart = stored.LastMeasurement?.Value;

        var browsers = Enumerable.Range(0, 3).Select(_ => host.CreateBrowser()).ToList();
        foreach (var browser in browsers)
        {
            await browser.GetTextAsync("/set?key=a&value=1");
        }

        stored.RecordObservableInstruments();
        var afterThree = stored.LastMeasurement?.Value;
        await browsers[0].GetTextAsync("/abandon");
        stored.RecordObservableInstruments();
        var afterAbandon = stored.LastMeasurement?.Value;

        Assert.Multiple(() =>
        {
            Assert.That(atStart, Is.Zero);
            Assert.That(afterThree, Is.EqualTo(3), "three sessions live, not the last count's 0");
            Assert.That(afterAbandon, Is.EqualTo(2));
        });
    }

    [Test]
    public async Task StoreFailures_AreTimedWithTheirErrorType_AndAFailedCommitIsCounted()
    {
        FaultyStore store = null!;
        await using var host = await SessionTestHost.StartAsync(Folder.Path, services: s => s.UseStore(sp =>
            store = new FaultyStore(ActivatorUtilities.CreateInstance<SqliteSessionStore>(sp))));
        using var commits = Collect<long>(host, ServerSideSessionDiagnostics.Commits);
        using var durations = Collect<double>(host, ServerSideSessionDiagnostics.StoreOperationDuration);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");

        store.OnUpdate = () => new TimeoutException("update");
        using var failedWrite = await browser.GetAsync("/set?key=a&value=2");
        store.OnLoad = () => new InvalidOperationException("load");
        using var failedLoad = await browser.GetAsync("/get?key=a");

        var failures = durations.GetMeasurementSnapshot().Where(m => m.Tags.ContainsKey("error.type")).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(failedWrite.StatusCode, Is.EqualTo(HttpStatusCode.InternalServerError));
            Assert.That(failedLoad.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
            Assert.That(Sum(commits, "outcome", "failed"), Is.EqualTo(1));
            Assert.That(failures.Select(m => (m.Tags["db.operation.name"], m.Tags["error.type"])), Is.EquivalentTo(new (object?, object?)[]
            {
                ("update", "System.TimeoutException"),
                ("load", "System.InvalidOperationException"),
            }));
            Assert.That(failures.Select(m => m.Tags["db.system.name"]), Has.All.EqualTo("other_sql"), "a store this library does not know");
        });
    }

    [Test]
    public async Task AStoreRegisteredInTheContainerDirectly_IsTimedAsAStoreThisLibraryDoesNotKnow()
    {
        // Not through UseStore: the store says nothing about itself, and it is not the SQLite default.
        await using var host = await SessionTestHost.StartAsync(Folder.Path, services: s => s.Services.AddSingleton<IServerSideSessionStore>(sp =>
            new FaultyStore(ActivatorUtilities.CreateInstance<SqliteSessionStore>(sp))));
        using var durations = Collect<double>(host, ServerSideSessionDiagnostics.StoreOperationDuration);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");
        await browser.GetTextAsync("/get?key=a");

        var systems = durations.GetMeasurementSnapshot().Select(m => m.Tags["db.system.name"]).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(host.Services.GetRequiredService<IServerSideSessionStore>(), Is.InstanceOf<FaultyStore>());
            Assert.That(systems, Is.Not.Empty);
            Assert.That(systems, Has.All.EqualTo("other_sql"));
        });
    }
}
