using Microsoft.Playwright;
using SessionMiddleware.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace SessionMiddleware.Tests;

/// <summary>
/// The demo in a real browser: headless Chromium from the system's packages (never a browser Playwright downloads),
/// driven by Playwright, against the demo started as a real process on 127.0.0.1. Chromium missing is a failure,
/// not a skip: <c>build/test</c> installs it, so CI always runs this.
/// </summary>
[TestFixture]
public sealed class BrowserTests
{
    /// <summary>Generous: the machine's two cores are shared with builds and other tests.</summary>
    private const float ActionTimeoutMs = 60_000;

    /// <summary>A phone's width (an iPhone 12 to 15, in CSS pixels).</summary>
    private const int PhoneWidth = 390;

    private DemoProcess _demo = null!;

    // After a navigation the tests assert the URL (a retrying assertion), then what the page shows: after a form's POST
    // and redirect, Chromium has been seen (about one run in five on a busy machine) never to report a load state for the
    // page it shows, with the network idle, so a WaitForURLAsync (which waits for one) timed out.
    private IPlaywright _playwright = null!;
    private IBrowser _browser = null!;
    private string _screenshots = null!;

    [OneTimeSetUp]
    public async Task StartDemoAndBrowser()
    {
        _demo = await DemoProcess.StartAsync("browser");
        _playwright = await Playwright.CreateAsync();
        _browser = await SystemChromium.LaunchAsync(_playwright, ActionTimeoutMs);
        _screenshots = Path.Combine(TestContext.CurrentContext.WorkDirectory, "screenshots");
        Directory.CreateDirectory(_screenshots);
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

    [Test]
    public async Task Browser_TwoDevicesSameUser_RevokingOneSignsItOutAndKeepsTheOther()
    {
        // Two separate contexts: two cookie jars, as two devices of one user.
        await using var deviceA = await NewDeviceAsync();
        await using var deviceB = await NewDeviceAsync();
        var pageA = await deviceA.NewPageAsync();
        var pageB = await deviceB.NewPageAsync();
        try
        {
            var user = "Ada " + Guid.NewGuid().ToString("N")[..8];

            var idA = await SignInAsync(pageA, user);
            var idB = await SignInAsync(pageB, user);
            Assert.That(idB, Is.Not.EqualTo(idA), "each context has its own session");

            // A's sessions page lists both, marks A as this device, and offers to revoke B.
            await pageA.GotoAsync("/sessions");
            var sessions = pageA.Locator("#sessions .session");
            await Expect(sessions).ToHaveCountAsync(2);
            await Expect(pageA.Locator($".session[data-session-id='{idA}'].this-device")).ToContainTextAsync("this device");
            var sessionB = pageA.Locator($".session[data-session-id='{idB}']");
            await Expect(sessionB.Locator(".device")).ToContainTextAsync("Headless Chrome");
            await Expect(sessionB.Locator(".ip")).ToHaveTextAsync("127.0.0.1");
            await SaveScreenshotAsync(pageA, "sessions-two-devices.png");

            // A revokes B.
            await sessionB.GetByRole(AriaRole.Button, new() { Name = "Revoke" }).ClickAsync();
            await Expect(pageA).ToHaveURLAsync(Url("/sessions"));
            await Expect(pageA.Locator("#flash")).ToBeVisibleAsync();
            await Expect(sessions).ToHaveCountAsync(1);
            await Expect(pageA.Locator($".session[data-session-id='{idA}']")).ToHaveCountAsync(1);
            await SaveScreenshotAsync(pageA, "sessions-after-revoke.png");

            // B's next navigation to its sessions page lands on the sign-in page, although it still holds its cookies.
            await pageB.GotoAsync("/sessions");
            await Expect(pageB).ToHaveURLAsync(Url("/signin?ReturnUrl=%2Fsessions"));
            await Expect(pageB.Locator("#sign-in")).ToBeVisibleAsync();
            await Expect(pageB.Locator("#signed-in-as")).ToHaveCountAsync(0);
            await SaveScreenshotAsync(pageB, "revoked-device-sign-in.png");

            // Its home page: signed out, in a new session (the revoked ID is not adopted again).
            await pageB.GotoAsync("/");
            await Expect(pageB.Locator("#sign-in-link")).ToBeVisibleAsync();
            Assert.That(await pageB.Locator("#session-id").TextContentAsync(), Is.Not.EqualTo(idB), "the revoked ID is not adopted again");

            // A is still signed in, in the same session.
            await pageA.GotoAsync("/");
            await Expect(pageA.Locator("#signed-in-as")).ToContainTextAsync(user);
            await Expect(pageA.Locator("#session-id")).ToHaveTextAsync(idA);

            // B signs in again from the page it was sent to, and is taken back to its sessions page.
            await pageB.GotoAsync("/sessions");
            await Expect(pageB).ToHaveURLAsync(Url("/signin?ReturnUrl=%2Fsessions"));
            await pageB.Locator("#sign-in input[name='name']").FillAsync(user);
            await pageB.Locator("#sign-in").GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
            await Expect(pageB).ToHaveURLAsync(Url("/sessions"));
            await Expect(pageB.Locator("#sessions .session")).ToHaveCountAsync(2);
            await Expect(pageB.Locator($".session[data-session-id='{idA}']:not(.this-device)")).ToHaveCountAsync(1);
        }
        catch
        {
            await SaveFailureAsync(pageA, "failure-device-a.png");
            await SaveFailureAsync(pageB, "failure-device-b.png");
            await TestContext.Out.WriteLineAsync("The demo's output:\n" + _demo.Output);
            throw;
        }
    }

    [Test]
    public async Task Browser_AtAPhonesWidth_NoPageScrollsSideways()
    {
        // A phone as phones render: the viewport meta tag decides the layout width. A second device of the same user
        // with a long User-Agent without spaces, and a name of the longest kind, to find whatever does not wrap.
        await using var phone = await NewDeviceAsync(phone: true);
        await using var other = await NewDeviceAsync(userAgent: "LongAgent/" + new string('x', 150));
        var page = await phone.NewPageAsync();
        var otherPage = await other.NewPageAsync();
        try
        {
            var user = "Grace" + Guid.NewGuid().ToString("N") + new string('w', 27);
            Assert.That(user, Has.Length.EqualTo(64), "the demo's longest name");
            await SignInAsync(otherPage, user);
            await SignInAsync(page, user, remember: true);
            await Expect(page.Locator("#remembered")).ToContainTextAsync("remembers you until");

            foreach (var (path, screenshot) in new[] { ("/sessions", "phone-sessions.png"), ("/", "phone-home.png"), ("/signin", "phone-sign-in.png") })
            {
                await page.GotoAsync(path);
                if (path == "/sessions")
                {
                    await Expect(page.Locator("#sessions .session")).ToHaveCountAsync(2);
                }

                await SaveScreenshotAsync(page, screenshot);
                var width = await page.EvaluateAsync<int[]>("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]");
                Assert.Multiple(() =>
                {
                    Assert.That(width[1], Is.EqualTo(PhoneWidth), $"{path}: laid out at the phone's width (the viewport meta tag)");
                    Assert.That(width[0], Is.LessThanOrEqualTo(width[1]), $"{path}: no horizontal scrolling (scrollWidth <= clientWidth)");
                });
            }
        }
        catch
        {
            await SaveFailureAsync(page, "failure-phone.png");
            throw;
        }
    }

    private string Url(string pathAndQuery) => new Uri(_demo.BaseAddress, pathAndQuery).ToString();

    /// <summary>Signs in on the demo's sign-in page; returns the session ID the home page shows afterwards.</summary>
    private static async Task<string> SignInAsync(IPage page, string user, bool remember = false)
    {
        await page.GotoAsync("/");
        var idBefore = await page.Locator("#session-id").TextContentAsync();
        await page.Locator("#sign-in-link").ClickAsync();
        await Expect(page.Locator("#no-passwords")).ToBeVisibleAsync();
        await page.Locator("#sign-in input[name='name']").FillAsync(user);
        if (remember)
        {
            await page.Locator("#sign-in input[name='remember']").CheckAsync();
        }

        await page.Locator("#sign-in").GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Expect(page.Locator("#signed-in-as")).ToContainTextAsync(user);
        var id = await page.Locator("#session-id").TextContentAsync();
        Assert.That(id, Does.Match("^[0-9a-f]{64}$").And.Not.EqualTo(idBefore), "signing in renews the session ID");
        return id!;
    }

    private async Task<IBrowserContext> NewDeviceAsync(bool phone = false, string? userAgent = null)
    {
        var context = await _browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = _demo.BaseAddress.ToString(),
            ViewportSize = phone ? new ViewportSize { Width = PhoneWidth, Height = 844 } : new ViewportSize { Width = 1100, Height = 700 },
            IsMobile = phone,
            HasTouch = phone,
            DeviceScaleFactor = phone ? 2 : 1,
            UserAgent = userAgent,
            Locale = "en-US",
        });
        context.SetDefaultTimeout(ActionTimeoutMs);
        context.SetDefaultNavigationTimeout(ActionTimeoutMs);
        return context;
    }

    private async Task SaveFailureAsync(IPage page, string name)
    {
        if (!page.IsClosed)
        {
            try
            {
                await SaveScreenshotAsync(page, name);
            }
            catch (PlaywrightException ex)
            {
                await TestContext.Out.WriteLineAsync($"No screenshot {name}: {ex.Message}");
            }
        }

        await TestContext.Out.WriteLineAsync($"Demo output:\n{_demo.Output}");
    }

    private async Task SaveScreenshotAsync(IPage page, string name)
    {
        var path = Path.Combine(_screenshots, name);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        TestContext.AddTestAttachment(path);
    }
}
