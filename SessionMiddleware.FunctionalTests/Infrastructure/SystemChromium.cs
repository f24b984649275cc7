using Microsoft.Playwright;

namespace SessionMiddleware.Tests.Infrastructure;

/// <summary>
/// The system's Chromium (never a browser Playwright downloads), headless and kept off the network: what every
/// real-browser test drives. Missing is a failure, not a skip: <c>build/test</c> installs it, so CI always runs them.
/// </summary>
internal static class SystemChromium
{
    /// <summary>Launches it through <paramref name="playwright"/>, each action bounded by <paramref name="timeoutMs"/>.</summary>
    public static Task<IBrowser> LaunchAsync(IPlaywright playwright, float timeoutMs) =>
        playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Find(),
            Headless = true,
            Timeout = timeoutMs,
            Args =
            [
                "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
                // Even so, Chromium looks up Google hosts (autofill, accounts, update) when a form is filled: keep it off the network.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            ],
        });

    /// <summary>
    /// <c>CHROMIUM_PATH</c> if set, else <c>chromium</c> (Debian) or <c>chromium-browser</c> on PATH. Fails the test,
    /// loudly, when there is none.
    /// </summary>
    public static string Find()
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
            "Chromium is not installed: the real-browser tests need `chromium` on PATH (or CHROMIUM_PATH). " +
            "Install it with `apt-get update && apt-get install -y chromium` (Debian); build/test does this itself when it is missing. " +
            "The tests are not skipped: CI must run them.");
        return null!;
    }
}
