using System.Diagnostics;
using Microsoft.Playwright;
using SessionMiddleware.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace SessionMiddleware.Tests;

/// <summary>
/// The demo's live element (a Blazor Server component on the sessions page, its circuit tied to the browser's session by
/// <c>AddInteractiveServerComponents().AddServerSideSessions()</c>) in real Chromium, against the demo as a real process:
/// ending a session in one browser flips the other browser's open page to signed out, without a reload.
/// </summary>
[TestFixture]
public sealed class BlazorBrowserTests
{
    /// <summary>Generous: the machine's cores are shared with builds and other tests.</summary>
    private const float ActionTimeoutMs = 60_000;

    /// <summary>
    /// The bound on revoke → signed-out page, asserted generously: it proves the end is pushed to the circuit (Blazor's own
    /// revalidation would take 30 minutes), not a speed. The real figures are printed.
    /// </summary>
    private static readonly TimeSpan PushBound = TimeSpan.FromSeconds(10);

    private const int Rounds = 10;

    private DemoProcess _demo = null!;
    private IPlaywright _playwright = null!;
    private IBrowser _browser = null!;

    [OneTimeSetUp]
    public async Task StartDemoAndBrowser()
    {
        _demo = await DemoProcess.StartAsync("blazor");
        _playwright = await Playwright.CreateAsync();
        _browser = await SystemChromium.LaunchAsync(_playwright, ActionTimeoutMs);
    }

    [OneTimeTearDown]
    public async Task StopDemoAndBrowser()
    {
        if (_browser is not null)
        {
            await _browser.DisposeAsync();
        }

        _playwright?.Dispose();
        if (_demo is not null)
        {
            await _demo.DisposeAsync();
        }
    }

    /// <param name="longPolling">
    /// B's browser without WebSocket and EventSource, so its circuit runs over SignalR's long polling: each poll is a
    /// request of its own, and the circuit's session is found from the cookies of the request that opened the connection.
    /// </param>
    [TestCase(false, TestName = "LiveElement_SignOutEverywhereElse_FlipsTheOtherBrowsersOpenPageToSignedOut_WithoutAReload")]
    [TestCase(true, TestName = "LiveElement_OverLongPolling_SignOutEverywhereElse_FlipsTheOtherBrowsersOpenPageToSignedOut")]
    public async Task LiveElement_SignOutEverywhereElse(bool longPolling)
    {
        await using var deviceA = await NewDeviceAsync();
        await using var deviceB = await NewDeviceAsync();
        if (longPolling)
        {
            await deviceB.AddInitScriptAsync("delete window.WebSocket; delete window.EventSource;");
        }

        var pageA = await deviceA.NewPageAsync();
        var pageB = await deviceB.NewPageAsync();
        var consoleB = new List<string>();
        pageB.Console += (_, message) =>
        {
            lock (consoleB)
            {
                consoleB.Add(message.Text);
            }
        };

        var user = "Lin " + Guid.NewGuid().ToString("N")[..8];
        var latencies = new List<double>();
        try
        {
            await SignInAsync(pageA, user);
            for (var round = 0; round < Rounds; round++)
            {
                await SignInAsync(pageB, user);
                await OpenLiveAsync(pageB, user);
                if (longPolling)
                {
                    Assert.That(await pageB.EvaluateAsync<bool>("() => performance.getEntriesByType('resource').some(e => e.name.includes('/_blazor?id='))"), Is.True,
                        "B's circuit polls");
                }

                await OpenLiveAsync(pageA, user);
                await Expect(pageA.Locator("#sessions .session")).ToHaveCountAsync(2);

                // A marker in B's page: it survives only if B is not reloaded or navigated.
                await pageB.EvaluateAsync("() => { window.liveMarker = 'round-" + round + "'; }");

                var clock = Stopwatch.StartNew();
                await pageA.Locator("#revoke-others").GetByRole(AriaRole.Button, new() { Name = "Sign out everywhere else" }).ClickAsync();
                await Expect(pageB.Locator("#live-signed-out")).ToBeVisibleAsync(new() { Timeout = (float)PushBound.TotalMilliseconds });
                latencies.Add(clock.Elapsed.TotalMilliseconds);

                Assert.Multiple(async () =>
                {
                    Assert.That(await pageB.EvaluateAsync<string>("() => window.liveMarker"), Is.EqualTo("round-" + round), "B's page was not reloaded");
                    Assert.That(pageB.Url, Is.EqualTo(Url("/sessions")), "B stayed on its page");
                });
                await Expect(pageB.Locator("#live-signed-in")).ToHaveCountAsync(0);
                await Expect(pageA.Locator("#flash")).ToContainTextAsync("Signed out 1 other session.");
                await Expect(pageA.Locator("#live-signed-in")).ToContainTextAsync(user);
            }

            // The circuit was closed, not only signed out: the framework told the browser so.
            lock (consoleB)
            {
                Assert.That(consoleB.Any(m => m.Contains("circuit", StringComparison.OrdinalIgnoreCase) && m.Contains("terminated", StringComparison.OrdinalIgnoreCase)), Is.True,
                    "B's circuit was closed by the server. B's console:\n" + string.Join("\n", consoleB));
            }

            Assert.That(_demo.Output, Does.Contain("SessionMiddleware.Blazor.CircuitSession[2442]"), "the end of each circuit's session is logged");

            // B's next navigation is signed out too (the session ended on the server, not only in the circuit).
            await pageB.GotoAsync("/sessions");
            await Expect(pageB).ToHaveURLAsync(Url("/signin?ReturnUrl=%2Fsessions"));
        }
        catch
        {
            await TestContext.Out.WriteLineAsync("The demo's output:\n" + _demo.Output);
            throw;
        }
        finally
        {
            Report(longPolling ? "long polling" : "WebSockets", latencies);
        }
    }

    private static void Report(string transport, List<double> latencies)
    {
        if (latencies.Count == 0)
        {
            return;
        }

        var sorted = latencies.Order().ToArray();
        double Percentile(double p) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
        TestContext.Progress.WriteLine(
            $"Blazor live element, click on \"Sign out everywhere else\" in A -> B's open page shows signed out ({transport}, {sorted.Length} rounds, real Chromium, " +
            $"the demo as a process): p50 {Percentile(0.50):0} ms, p99 {Percentile(0.99):0} ms, max {sorted[^1]:0} ms; all: {string.Join(", ", latencies.Select(l => l.ToString("0", System.Globalization.CultureInfo.InvariantCulture)))} ms");
    }

    /// <summary>Opens the sessions page and waits until its live element runs over a circuit, signed in as <paramref name="user"/>.</summary>
    private static async Task OpenLiveAsync(IPage page, string user)
    {
        await page.GotoAsync("/sessions");
        await Expect(page.Locator("#live-status[data-interactive='true']")).ToBeVisibleAsync();
        await Expect(page.Locator("#live-signed-in")).ToContainTextAsync(user);
    }

    private string Url(string pathAndQuery) => new Uri(_demo.BaseAddress, pathAndQuery).ToString();

    private static async Task SignInAsync(IPage page, string user)
    {
        await page.GotoAsync("/signin");
        await page.Locator("#sign-in input[name='name']").FillAsync(user);
        await page.Locator("#sign-in").GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Expect(page.Locator("#signed-in-as")).ToContainTextAsync(user);
    }

    private async Task<IBrowserContext> NewDeviceAsync()
    {
        var context = await _browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = _demo.BaseAddress.ToString(),
            ViewportSize = new ViewportSize { Width = 1100, Height = 700 },
            Locale = "en-US",
        });
        context.SetDefaultTimeout(ActionTimeoutMs);
        context.SetDefaultNavigationTimeout(ActionTimeoutMs);
        return context;
    }
}
