using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;

namespace SessionMiddleware.Tests;

/// <summary>
/// Starts the demo app as a real process (<c>dotnet exec SessionMiddleware.Demo.dll</c>) on a free loopback port,
/// with its SQLite file in a temp folder, and drives it like a browser that keeps cookies.
/// </summary>
[TestFixture]
public sealed partial class DemoTests
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(15);

    private readonly StringBuilder _output = new();
    private string _folder = null!;
    private string _databasePath = null!;
    private Process? _process;
    private Uri _baseAddress = null!;

    [OneTimeSetUp]
    public async Task StartDemo()
    {
        _folder = Path.Combine(Path.GetTempPath(), "sm-tests", "demo-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_folder);
        _databasePath = Path.Combine(_folder, "demo.db");
        try
        {
            _baseAddress = await StartProcessAsync();
        }
        catch
        {
            await StopDemo();
            throw;
        }
    }

    [OneTimeTearDown]
    public async Task StopDemo()
    {
        if (_process is { } process)
        {
            _process = null;
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                }

                using var stopped = new CancellationTokenSource(StopTimeout);
                await process.WaitForExitAsync(stopped.Token);
            }
            catch (Exception ex) when (ex is InvalidOperationException or OperationCanceledException)
            {
                TestContext.Progress.WriteLine($"The demo process did not stop cleanly: {ex.Message}");
            }
            finally
            {
                process.Dispose();
            }
        }

        if (_folder is not null && Directory.Exists(_folder))
        {
            try
            {
                Directory.Delete(_folder, recursive: true);
            }
            catch (IOException ex)
            {
                TestContext.Progress.WriteLine($"Could not delete {_folder}: {ex.Message}");
            }
        }
    }

    [Test]
    public async Task Demo_FirstVisit_ServesPageWithCounterAtOne()
    {
        using var browser = CreateBrowser(out var cookies);

        var page = await GetPageAsync(browser);

        Assert.Multiple(() =>
        {
            Assert.That(page, Does.Contain("<h1>SessionMiddleware demo</h1>"));
            Assert.That(Visits(page), Is.EqualTo(1));
            Assert.That(SessionId(page), Does.Match("^[0-9a-f]{64}$"), "the public session Id is the hex of a SHA-256");
            Assert.That(page, Does.Contain("id=\"created-at\"").And.Contain("id=\"last-access\""));
            Assert.That(cookies.GetCookies(_baseAddress)[".ServerSession"], Is.Not.Null, "the session cookie is set on the first write");
        });
    }

    [Test]
    public async Task Demo_StartedWithConnectionStringArgument_StoresSessionsInThatFile()
    {
        using var browser = CreateBrowser(out _);

        await GetPageAsync(browser);

        Assert.Multiple(() =>
        {
            Assert.That(File.Exists(_databasePath), Is.True, "the database named on the command line");
            Assert.That(File.Exists(Path.Combine(_folder, "sessions.db")), Is.False, "the appsettings.json default is overridden");
        });
    }

    [Test]
    public async Task Demo_SecondVisitWithCookie_CounterGoesUpInSameSession()
    {
        using var browser = CreateBrowser(out _);

        var first = await GetPageAsync(browser);
        var second = await GetPageAsync(browser);
        var third = await GetPageAsync(browser);

        Assert.Multiple(() =>
        {
            Assert.That(Visits(first), Is.EqualTo(1));
            Assert.That(Visits(second), Is.EqualTo(2));
            Assert.That(Visits(third), Is.EqualTo(3));
            Assert.That(SessionId(second), Is.EqualTo(SessionId(first)));
            Assert.That(SessionId(third), Is.EqualTo(SessionId(first)));
        });
    }

    [Test]
    public async Task Demo_OtherBrowser_GetsItsOwnSession()
    {
        using var alice = CreateBrowser(out _);
        using var bob = CreateBrowser(out _);

        await GetPageAsync(alice);
        var alicePage = await GetPageAsync(alice);
        var bobPage = await GetPageAsync(bob);

        Assert.Multiple(() =>
        {
            Assert.That(Visits(alicePage), Is.EqualTo(2));
            Assert.That(Visits(bobPage), Is.EqualTo(1));
            Assert.That(SessionId(bobPage), Is.Not.EqualTo(SessionId(alicePage)));
        });
    }

    [Test]
    public async Task Demo_NotePosted_RedirectsAndShowsNoteHtmlEncoded()
    {
        using var browser = CreateBrowser(out _);
        var page = await GetPageAsync(browser);
        const string note = "Buy <b>milk</b> & \"eggs\"";

        await PostFormAsync(browser, "/note", page, ("note", note));
        var after = await GetPageAsync(browser);

        Assert.Multiple(() =>
        {
            Assert.That(NoteParagraph(after), Is.EqualTo("Buy &lt;b&gt;milk&lt;/b&gt; &amp; &quot;eggs&quot;"));
            Assert.That(after, Does.Not.Contain("<b>milk</b>"), "user input is never written as markup");
            Assert.That(Visits(after), Is.EqualTo(2), "the note is kept in the same session as the counter");
        });
    }

    [Test]
    public async Task Demo_ForgetMe_ResetsCounterAndNote()
    {
        using var browser = CreateBrowser(out _);
        await GetPageAsync(browser);
        var page = await GetPageAsync(browser);
        await PostFormAsync(browser, "/note", page, ("note", "remember this"));
        page = await GetPageAsync(browser);
        Assert.That(Visits(page), Is.EqualTo(3));
        Assert.That(NoteParagraph(page), Is.EqualTo("remember this"));

        await PostFormAsync(browser, "/forget", page);
        var after = await GetPageAsync(browser);

        Assert.Multiple(() =>
        {
            Assert.That(Visits(after), Is.EqualTo(1));
            Assert.That(NoteParagraph(after), Is.EqualTo("<em>No note yet.</em>"));
            Assert.That(after, Does.Not.Contain("remember this"));
        });
    }

    [Test]
    public async Task Demo_PostWithoutAntiforgeryToken_Returns400AndKeepsSession()
    {
        using var browser = CreateBrowser(out _);
        await GetPageAsync(browser);

        using var content = new FormUrlEncodedContent([new KeyValuePair<string, string>("note", "forged")]);
        using var response = await browser.PostAsync("/note", content);
        var after = await GetPageAsync(browser);

        Assert.Multiple(() =>
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
            Assert.That(Visits(after), Is.EqualTo(2));
            Assert.That(after, Does.Not.Contain("forged"));
        });
    }

    private async Task<Uri> StartProcessAsync()
    {
        var start = new ProcessStartInfo(DotnetHost())
        {
            WorkingDirectory = _folder,
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add("exec");
        start.ArgumentList.Add(LocateDemo());
        start.ArgumentList.Add("--urls");
        start.ArgumentList.Add("http://127.0.0.1:0");
        start.ArgumentList.Add($"--ServerSideSessions:ConnectionString=Data Source={_databasePath}");
        if (!OperatingSystem.IsWindows())
        {
            // Data Protection keeps its key ring under the home folder: keep it in the temp folder too.
            start.Environment["HOME"] = _folder;
        }

        var listening = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                listening.TrySetException(new InvalidOperationException("The demo closed its output before printing its address."));
                return;
            }

            Record(e.Data);
            if (ListeningLine().Match(e.Data) is { Success: true } match)
            {
                listening.TrySetResult(match.Groups[1].Value);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                Record(e.Data);
            }
        };

        if (!process.Start())
        {
            throw new InvalidOperationException($"Could not start {start.FileName}.");
        }

        _process = process;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        string address;
        try
        {
            address = await listening.Task.WaitAsync(StartTimeout);
        }
        catch (Exception ex) when (ex is TimeoutException or InvalidOperationException)
        {
            throw new InvalidOperationException(
                $"The demo did not print \"Demo listening on ...\" within {StartTimeout.TotalSeconds:0} s ({ex.Message}). Its output:\n{Output}", ex);
        }

        var uri = new Uri(address);
        Assert.That(uri.Host, Is.EqualTo("127.0.0.1"), "the demo listens on the loopback address it was given");
        Assert.That(uri.Port, Is.Not.Zero, "the printed address carries the port actually bound");
        return uri;
    }

    /// <summary>The demo built next to this test project, in the same configuration (Debug or Release).</summary>
    private static string LocateDemo()
    {
        // <repo>/SessionMiddleware.Tests/bin/<Configuration>/<tfm>/SessionMiddleware.Tests.dll
        var testBin = new DirectoryInfo(Path.GetDirectoryName(typeof(DemoTests).Assembly.Location)!);
        var targetFramework = testBin.Name;
        var configuration = testBin.Parent!.Name;
        var repositoryRoot = testBin.Parent.Parent!.Parent!.Parent!.FullName;
        var demo = Path.Combine(repositoryRoot, "samples", "SessionMiddleware.Demo", "bin", configuration, targetFramework, "SessionMiddleware.Demo.dll");
        Assert.That(File.Exists(demo), Is.True, $"The demo is not built at {demo}; the test project's reference to it builds it.");
        return demo;
    }

    /// <summary>The dotnet host running this test (or the one on PATH).</summary>
    private static string DotnetHost()
    {
        var fromSdk = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (!string.IsNullOrEmpty(fromSdk) && File.Exists(fromSdk))
        {
            return fromSdk;
        }

        var current = Environment.ProcessPath;
        return current is not null && string.Equals(Path.GetFileNameWithoutExtension(current), "dotnet", StringComparison.OrdinalIgnoreCase)
            ? current
            : "dotnet";
    }

    private HttpClient CreateBrowser(out CookieContainer cookies)
    {
        cookies = new CookieContainer();
        var handler = new HttpClientHandler { CookieContainer = cookies, UseCookies = true, AllowAutoRedirect = false };
        return new HttpClient(handler) { BaseAddress = _baseAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    private async Task<string> GetPageAsync(HttpClient browser)
    {
        using var response = await browser.GetAsync("/");
        var body = await response.Content.ReadAsStringAsync();
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), $"GET / answered {(int)response.StatusCode}: {body}\nDemo output:\n{Output}");
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("text/html"));
        return body;
    }

    /// <summary>Posts a form of the page with its antiforgery field, as the browser would, and expects the redirect back to /.</summary>
    private async Task PostFormAsync(HttpClient browser, string path, string page, params (string Name, string Value)[] fields)
    {
        var token = AntiforgeryField().Match(page);
        Assert.That(token.Success, Is.True, "the page's forms carry an antiforgery field");
        var form = new List<KeyValuePair<string, string>>
        {
            new(WebUtility.HtmlDecode(token.Groups["name"].Value), WebUtility.HtmlDecode(token.Groups["value"].Value)),
        };
        form.AddRange(fields.Select(f => new KeyValuePair<string, string>(f.Name, f.Value)));

        using var content = new FormUrlEncodedContent(form);
        using var response = await browser.PostAsync(path, content);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.SeeOther), $"POST {path}: {await response.Content.ReadAsStringAsync()}");
        Assert.That(response.Headers.Location?.OriginalString, Is.EqualTo("/"));
    }

    private static int Visits(string page)
    {
        var match = VisitsCounter().Match(page);
        Assert.That(match.Success, Is.True, "the page shows the visit counter");
        return int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    private static string SessionId(string page)
    {
        var match = SessionIdCode().Match(page);
        Assert.That(match.Success, Is.True, "the page shows the session Id");
        return match.Groups[1].Value;
    }

    private static string NoteParagraph(string page)
    {
        var match = NoteText().Match(page);
        Assert.That(match.Success, Is.True, "the page shows the note");
        return match.Groups[1].Value;
    }

    private void Record(string line)
    {
        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    private string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    [GeneratedRegex(@"^Demo listening on (\S+)$")]
    private static partial Regex ListeningLine();

    [GeneratedRegex("""<strong id="visits">(\d+)</strong>""")]
    private static partial Regex VisitsCounter();

    [GeneratedRegex("""<code id="session-id">([^<]*)</code>""")]
    private static partial Regex SessionIdCode();

    [GeneratedRegex("""<p id="note">(.*?)</p>""", RegexOptions.Singleline)]
    private static partial Regex NoteText();

    [GeneratedRegex("""<input type="hidden" name="(?<name>[^"]+)" value="(?<value>[^"]*)">""")]
    private static partial Regex AntiforgeryField();
}
