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

    [Test]
    public async Task Browser_TwoDevicesSameUser_RevokingOneSignsItOutAndKeepsTheOther()
    {
        var chromium = FindChromium();
        await using var demo = await DemoProcess.StartAsync("browser");
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = chromium,
            Headless = true,
            Timeout = ActionTimeoutMs,
            Args =
            [
                "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
                // Even so, Chromium looks up Google hosts (autofill, accounts, update) when a form is filled: keep it off the network.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            ],
        });

        var screenshots = Path.Combine(TestContext.CurrentContext.WorkDirectory, "screenshots");
        Directory.CreateDirectory(screenshots);

        // Two separate contexts: two cookie jars, as two devices of one user.
        await using var deviceA = await NewDeviceAsync(browser, demo.BaseAddress);
        await using var deviceB = await NewDeviceAsync(browser, demo.BaseAddress);
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
            var rows = pageA.Locator("#sessions tbody tr");
            await Expect(rows).ToHaveCountAsync(2);
            await Expect(pageA.Locator($"tr[data-session-id='{idA}'].this-device")).ToContainTextAsync("this device");
            var rowB = pageA.Locator($"tr[data-session-id='{idB}']");
            await Expect(rowB.Locator(".device")).ToContainTextAsync("Headless Chrome");
            await Expect(rowB.Locator(".ip")).ToHaveTextAsync("127.0.0.1");
            await SaveScreenshotAsync(pageA, Path.Combine(screenshots, "sessions-two-devices.png"));

            // A revokes B.
            await rowB.GetByRole(AriaRole.Button, new() { Name = "Revoke" }).ClickAsync();
            await pageA.WaitForURLAsync(new Uri(demo.BaseAddress, "/sessions").ToString());
            await Expect(pageA.Locator("#flash")).ToBeVisibleAsync();
            await Expect(rows).ToHaveCountAsync(1);
            await Expect(pageA.Locator($"tr[data-session-id='{idA}']")).ToHaveCountAsync(1);
            await SaveScreenshotAsync(pageA, Path.Combine(screenshots, "sessions-after-revoke.png"));

            // B's next page load: signed out, although it still holds its cookie.
            await pageB.ReloadAsync();
            await Expect(pageB.Locator("#sign-in")).ToBeVisibleAsync();
            await Expect(pageB.Locator("#signed-in-as")).ToHaveCountAsync(0);
            Assert.That(await pageB.Locator("#session-id").TextContentAsync(), Is.Not.EqualTo(idB), "the revoked ID is not adopted again");
            await pageB.GotoAsync("/sessions");
            await Expect(pageB.Locator("#signed-out")).ToBeVisibleAsync();

            // A is still signed in, in the same session.
            await pageA.GotoAsync("/");
            await Expect(pageA.Locator("#signed-in-as")).ToContainTextAsync(user);
            await Expect(pageA.Locator("#session-id")).ToHaveTextAsync(idA);
        }
        catch
        {
            if (!pageA.IsClosed)
            {
                await SaveScreenshotAsync(pageA, Path.Combine(screenshots, "failure-device-a.png"));
            }

            await TestContext.Out.WriteLineAsync($"Demo output:\n{demo.Output}");
            throw;
        }
    }

    /// <summary>Signs in on the demo's home page; returns the session ID the page shows afterwards.</summary>
    private static async Task<string> SignInAsync(IPage page, string user)
    {
        await page.GotoAsync("/");
        var idBefore = await page.Locator("#session-id").TextContentAsync();
        await page.Locator("#sign-in input[name='name']").FillAsync(user);
        await page.Locator("#sign-in").GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Expect(page.Locator("#signed-in-as")).ToContainTextAsync(user);
        var id = await page.Locator("#session-id").TextContentAsync();
        Assert.That(id, Does.Match("^[0-9a-f]{64}$").And.Not.EqualTo(idBefore), "signing in renews the session ID");
        return id!;
    }

    private static async Task<IBrowserContext> NewDeviceAsync(IBrowser browser, Uri baseAddress)
    {
        var context = await browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = baseAddress.ToString(),
            ViewportSize = new ViewportSize { Width = 1100, Height = 700 },
            Locale = "en-US",
        });
        context.SetDefaultTimeout(ActionTimeoutMs);
        context.SetDefaultNavigationTimeout(ActionTimeoutMs);
        return context;
    }

    private static async Task SaveScreenshotAsync(IPage page, string path)
    {
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        TestContext.AddTestAttachment(path);
    }

    /// <summary>
    /// The system's Chromium: <c>CHROMIUM_PATH</c> if set, else <c>chromium</c> (Debian) or <c>chromium-browser</c> on
    /// PATH. Fails the test, loudly, when there is none.
    /// </summary>
    private static string FindChromium()
    {
        var configured = Environment.GetEnvironmentVariable("CHROMIUM_PATH");
        if (!string.IsNullOrEmpty(configured))
        {
            Assert.That(File.Exists(configured), Is.True, $"CHROMIUM_PATH is set to {configured}, which does not exist.");
            return configured;
        }

        foreach (var folder in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            foreach (var name in new[] { "chromium", "chromium-browser" })
            {
                var candidate = Path.Combine(folder, name);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        Assert.Fail(
            "Chromium is not installed: this real-browser test needs `chromium` on PATH (or CHROMIUM_PATH). " +
            "Install it with `apt-get update && apt-get install -y chromium` (Debian); build/test does this itself when it is missing. " +
            "The test is not skipped: CI must run it.");
        return null!;
    }
}
