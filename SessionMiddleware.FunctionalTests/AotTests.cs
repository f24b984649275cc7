using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// The packages under Native AOT: samples/SessionMiddleware.AotApp is published with <c>PublishAot</c> (no trim or AOT
/// warning may name our code) and its native binary is run on a loopback port over a real SQLite file: a session
/// written and read back, a sign-in through the ticket store, an [Authorize] endpoint, expiry, and the cleaner.
/// </summary>
public sealed partial class AotTests : TempFolderTest
{
    private static readonly TimeSpan PublishTimeout = TimeSpan.FromMinutes(15);
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan CleanerTimeout = TimeSpan.FromSeconds(30);

    [Test]
    public async Task PublishedWithNativeAot_SessionsSignInExpiryAndCleaner_Work()
    {
        var started = Stopwatch.StartNew();
        var publish = Folder.File("publish");
        var project = Path.Combine(RepositoryPaths.Root(), "samples", "SessionMiddleware.AotApp", "SessionMiddleware.AotApp.csproj");
        var (exitCode, output) = await ChildCommand.RunAsync("dotnet", RepositoryPaths.Root(), PublishTimeout, "publish", project, "-c", "Release", "-o", publish, "-nologo");
        var publishTime = started.Elapsed;
        Assert.That(exitCode, Is.Zero, $"dotnet publish failed:\n{output}");
        Assert.That(OurTrimOrAotWarnings(output), Is.Empty, $"trim or AOT warnings in our code:\n{output}");

        var binary = Path.Combine(publish, "SessionMiddleware.AotApp");
        Assert.That(File.Exists(binary), Is.True, "the native binary was published");
        Assert.That(File.Exists(Path.Combine(publish, "SessionMiddleware.AotApp.dll")), Is.False, "a native binary, not an IL assembly");
        TestContext.Out.WriteLine($"publish: {publishTime.TotalSeconds:0} s; binary: {new FileInfo(binary).Length / 1024.0 / 1024.0:0.0} MiB");

        await using var app = await AotApp.StartAsync(binary, publish, Folder.Path);
        using var client = new HttpClient(new HttpClientHandler { CookieContainer = new CookieContainer() }) { BaseAddress = app.BaseAddress };

        // A value written and read back: the same session.
        var written = await TextAsync(await client.PostAsync(new Uri("/note", UriKind.Relative), new StringContent("hello")));
        Assert.That(await client.GetStringAsync(new Uri("/note", UriKind.Relative)), Is.EqualTo($"{written} hello"));

        // Signed out, the [Authorize] endpoint answers 401; signed in through the ticket store, the row is bound to the
        // user, the ID renewed and the data kept.
        Assert.That((await client.GetAsync(new Uri("/me", UriKind.Relative))).StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
        (await client.PostAsync(new Uri("/signin?name=ada", UriKind.Relative), null)).EnsureSuccessStatusCode();
        Assert.That(await client.GetStringAsync(new Uri("/me", UriKind.Relative)), Is.EqualTo("ada ada"));
        var signedIn = (await client.GetStringAsync(new Uri("/note", UriKind.Relative))).Split(' ');
        Assert.That(signedIn, Is.EqualTo(new[] { signedIn[0], "hello" }));
        Assert.That(signedIn[0], Is.Not.EqualTo(written), "the sign-in renewed the ID");

        // Past the idle timeout (20 minutes): the session is gone, and with it the sign-in.
        (await client.PostAsync(new Uri("/clock/advance?minutes=30", UriKind.Relative), null)).EnsureSuccessStatusCode();
        var expired = (await client.GetStringAsync(new Uri("/note", UriKind.Relative))).Split(' ');
        Assert.That(expired[1], Is.EqualTo("(none)"));
        Assert.That(expired[0], Is.Not.EqualTo(signedIn[0]));
        Assert.That((await client.GetAsync(new Uri("/me", UriKind.Relative))).StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));

        // The cleaner (every second) deletes the expired row, and the health check reports its run.
        Assert.That(await app.WaitForOutputAsync(CleanupDeletedOne(), CleanerTimeout), Is.True, $"the cleaner deleted the expired row:\n{app.Output}");
        var health = await client.GetStringAsync(new Uri("/healthz", UriKind.Relative));
        Assert.That(health, Does.StartWith("status=Healthy").And.Contain("last_cleanup="), health);

        Assert.That(app.Output, Does.Not.Contain("fail:").And.Not.Contain("crit:").And.Not.Contain("Unhandled exception"), app.Output);
        TestContext.Out.WriteLine($"test: {started.Elapsed.TotalSeconds:0} s");
    }

    /// <summary>The trim (IL2xxx) and AOT (IL3xxx) warnings that name our code, the project path MSBuild appends left out.</summary>
    private static List<string> OurTrimOrAotWarnings(string output) =>
        [.. output.Split('\n')
            .Where(line => TrimOrAotWarning().IsMatch(line))
            .Select(line => ProjectSuffix().Replace(line, ""))
            .Where(line => line.Contains("SessionMiddleware", StringComparison.Ordinal))
            .Distinct()];

    private static async Task<string> TextAsync(HttpResponseMessage response)
    {
        response.EnsureSuccessStatusCode();
        return await response.Content.ReadAsStringAsync();
    }

    [GeneratedRegex(@"warning IL[23]\d{3}")]
    private static partial Regex TrimOrAotWarning();

    [GeneratedRegex(@"\s*\[[^\]]*\.csproj[^\]]*\]\s*$")]
    private static partial Regex ProjectSuffix();

    [GeneratedRegex(@"Session cleanup deleted 1 expired sessions")]
    private static partial Regex CleanupDeletedOne();

    /// <summary>The native app as a process on a free loopback port, its SQLite file and key ring in the test's folder; disposing it kills it.</summary>
    private sealed partial class AotApp : IAsyncDisposable
    {
        private readonly StringBuilder _output = new();
        private readonly Process _process;

        private AotApp(Process process) => _process = process;

        public Uri BaseAddress { get; private set; } = null!;

        public string Output
        {
            get
            {
                lock (_output)
                {
                    return _output.ToString();
                }
            }
        }

        public static async Task<AotApp> StartAsync(string binary, string workingDirectory, string folder)
        {
            var start = new ProcessStartInfo(binary)
            {
                WorkingDirectory = workingDirectory,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            start.ArgumentList.Add("--urls");
            start.ArgumentList.Add("http://127.0.0.1:0");
            start.ArgumentList.Add($"--ServerSideSessions:ConnectionString=Data Source={Path.Combine(folder, "aot.db")}");
            start.Environment["HOME"] = folder; // the Data Protection key ring
            var app = new AotApp(Process.Start(start)!);
            app._process.OutputDataReceived += (_, e) => app.Append(e.Data);
            app._process.ErrorDataReceived += (_, e) => app.Append(e.Data);
            app._process.BeginOutputReadLine();
            app._process.BeginErrorReadLine();
            if (!await app.WaitForOutputAsync(Listening(), StartTimeout))
            {
                await app.DisposeAsync();
                Assert.Fail($"the AOT app did not start in {StartTimeout}:\n{app.Output}");
            }

            app.BaseAddress = new Uri(Listening().Match(app.Output).Groups["url"].Value);
            return app;
        }

        /// <summary>Waits until the output matches <paramref name="pattern"/>, polling every 50 ms, at most <paramref name="timeout"/>.</summary>
        public async Task<bool> WaitForOutputAsync(Regex pattern, TimeSpan timeout)
        {
            var waited = Stopwatch.StartNew();
            while (!pattern.IsMatch(Output))
            {
                if (waited.Elapsed > timeout || _process.HasExited)
                {
                    return pattern.IsMatch(Output);
                }

                await Task.Delay(50);
            }

            return true;
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            using var stopped = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            await _process.WaitForExitAsync(stopped.Token);
            _process.Dispose();
        }

        private void Append(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (_output)
            {
                _output.AppendLine(line);
            }
        }

        [GeneratedRegex(@"AOT app listening on (?<url>http://\S+)")]
        private static partial Regex Listening();
    }
}
