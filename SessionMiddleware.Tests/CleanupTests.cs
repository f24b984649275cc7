using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Time.Testing;
using SessionMiddleware.Cleanup;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// The hosted cleaner runs on the injected clock (its runs over each store, batching and failures, are in
/// <see cref="CleanupRunTests"/>), and its first run is jittered.
/// </summary>
public sealed class CleanupTests : TempFolderTest
{
    private FakeTimeProvider _time = null!;

    [SetUp]
    public void SetUp() => _time = StoreFactory.NewTime();

    [Test]
    public async Task HostedCleaner_RunsEveryCleanupInterval_OnTheInjectedClock()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o =>
        {
            o.IdleTimeout = TimeSpan.FromMinutes(20);
            o.CleanupInterval = TimeSpan.FromMinutes(5);
        }, time: _time);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");
        var cleaner = host.Services.GetServices<IHostedService>().OfType<SessionCleanupService>().Single();
        var runs = new System.Collections.Concurrent.BlockingCollection<int>();
        cleaner.RunCompleted += runs.Add;
        await cleaner.TimerStarted.WaitAsync(TimeSpan.FromSeconds(30));

        _time.Advance(TimeSpan.FromMinutes(5));          // first tick: nothing expired yet
        Assert.That(runs.TryTake(out var first, TimeSpan.FromSeconds(30)), Is.True, "the cleaner ran at the first interval");
        _time.Advance(TimeSpan.FromMinutes(20));         // the session is now 25 minutes idle; ticks at 10..25 minutes
        var deletedTotal = 0;
        while (deletedTotal == 0 && runs.TryTake(out var n, TimeSpan.FromSeconds(30)))
        {
            deletedTotal += n;
        }

        Assert.Multiple(() =>
        {
            Assert.That(first, Is.Zero);
            Assert.That(deletedTotal, Is.EqualTo(1));
            Assert.That(host.CountRows(), Is.Zero);
        });
    }

    [Test]
    public async Task HostedCleaner_SaysAtInformationThatItRuns_ThenLogsRunsThatDeleteAtInformation_AndEmptyRunsAtDebug()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o =>
        {
            o.IdleTimeout = TimeSpan.FromMinutes(20);
            o.CleanupInterval = TimeSpan.FromDays(1);      // the timer stays quiet: the test runs the cleaner itself
        }, time: _time);
        var cleaner = host.Services.GetServices<IHostedService>().OfType<SessionCleanupService>().Single();
        await cleaner.TimerStarted.WaitAsync(TimeSpan.FromSeconds(30));
        await host.CreateBrowser().GetTextAsync("/set?key=a&value=1");

        await cleaner.RunOnceAsync(CancellationToken.None);
        _time.Advance(TimeSpan.FromMinutes(21));
        await cleaner.RunOnceAsync(CancellationToken.None);

        var cleanerLogs = host.Logs.GetSnapshot().Where(r => r.Category == typeof(SessionCleanupService).FullName).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(
                cleanerLogs.Select(r => (r.Id.Name, r.Level)),
                Is.EqualTo(new[]
                {
                    ("CleanupStarted", Microsoft.Extensions.Logging.LogLevel.Information),
                    ("CleanupFoundNothing", Microsoft.Extensions.Logging.LogLevel.Debug),
                    ("CleanupCompleted", Microsoft.Extensions.Logging.LogLevel.Information),
                }));
            Assert.That(cleanerLogs[0].Message, Does.Contain("1.00:00:00"), "names the interval");
        });
    }

    [Test]
    public void FirstRun_ComesAfterHalfToAWholeInterval_NotTheSameOnEveryNode()
    {
        var interval = TimeSpan.FromMinutes(1);

        var delays = Enumerable.Range(0, 200).Select(_ => SessionCleanupService.FirstRunDelay(interval)).ToList();

        Assert.Multiple(() =>
        {
            Assert.That(delays, Is.All.InRange(interval / 2, interval));
            Assert.That(delays.Distinct().Count(), Is.GreaterThan(100));
            Assert.That(SessionCleanupService.FirstRunDelay(TimeSpan.FromTicks(1)), Is.EqualTo(TimeSpan.FromMilliseconds(1)));
        });
    }
}
