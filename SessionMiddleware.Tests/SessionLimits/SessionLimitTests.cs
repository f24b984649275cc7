using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using System.Security.Claims;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests.SessionLimits;

/// <summary>
/// <see cref="ServerSideSessionOptions.MaxSessionsPerUser"/>: sign-ins through the ticket store (cookie authentication's
/// SignInAsync) and BindToUser, on real Kestrel and a real SQLite file, each browser an HttpClient with its own cookies.
/// </summary>
public sealed class SessionLimitTests : TempFolderTest
{
    private readonly ConcurrentQueue<(string SessionId, string Reason, string? UserId)> _ended = new();

    [SetUp]
    public void ClearEnded() => _ended.Clear();

    private Task<SessionTestHost> StartAsync(int cap, MaxSessionsBehavior behavior = MaxSessionsBehavior.EndLeastRecentlyUsed, Func<MaxSessionsContext, ValueTask<int>>? selector = null) =>
        AuthTestApp.StartAsync(Folder.Path, configure: o =>
        {
            o.MaxSessionsPerUser = cap;
            o.WhenMaxSessionsReached = behavior;
            o.MaxSessionsPerUserSelector = selector;
            o.Events.OnEnded = c =>
            {
                _ended.Enqueue((c.SessionId, c.Reason, c.UserId));
                return Task.CompletedTask;
            };
        });

    private static async Task<HttpClient> SignedInBrowserAsync(SessionTestHost host, string user)
    {
        var browser = host.CreateBrowser();
        Assert.That(await browser.GetTextAsync($"/signin?user={user}"), Is.EqualTo("signed in"));
        return browser;
    }

    [Test]
    public async Task AtTheCap_ASignInEndsTheLeastRecentlyUsedSession_WithItsOwnReason_AndTheOthersStay()
    {
        await using var host = await StartAsync(cap: 2);
        var first = await SignedInBrowserAsync(host, "alice");
        var firstId = await first.GetTextAsync("/id");
        host.Time.Advance(TimeSpan.FromMinutes(2));
        var second = await SignedInBrowserAsync(host, "alice");
        var secondId = await second.GetTextAsync("/id");
        host.Time.Advance(TimeSpan.FromMinutes(2));
        await first.GetTextAsync("/set?key=k&value=v");   // first is now the most recently used; second the least
        var bob = await SignedInBrowserAsync(host, "bob");
        host.Time.Advance(TimeSpan.FromMinutes(2));
        using var collector = new MetricCollector<long>(host.Services.GetRequiredService<IMeterFactory>(), ServerSideSessionDiagnostics.MeterName, ServerSideSessionDiagnostics.SessionsEnded);

        var third = await SignedInBrowserAsync(host, "alice");

        Assert.Multiple(async () =>
        {
            Assert.That(await second.GetTextAsync("/whoami"), Is.EqualTo("anonymous"), "the least recently used session ended");
            Assert.That(await first.GetTextAsync("/whoami"), Is.EqualTo("alice"));
            Assert.That(await first.GetTextAsync("/id"), Is.EqualTo(firstId));
            Assert.That(await third.GetTextAsync("/whoami"), Is.EqualTo("alice"));
            Assert.That(await bob.GetTextAsync("/whoami"), Is.EqualTo("bob"), "another user's sessions do not count");
            Assert.That(_ended, Has.Exactly(1).EqualTo((secondId, SessionEndReason.SessionLimit, "alice")));
            Assert.That(collector.GetMeasurementSnapshot().Where(m => Equals(m.Tags["reason"], SessionEndReason.SessionLimit)).Sum(m => m.Value), Is.EqualTo(1));
            Assert.That(await host.Services.GetRequiredService<ISessionManager>().ListForUserAsync("alice"), Has.Count.EqualTo(2));
        });
    }

    [Test]
    public async Task AtTheCap_RefuseSignIn_SignInAsyncThrows_NothingIsStored_AndTheBrowserKeepsItsSession()
    {
        await using var host = await StartAsync(cap: 1, MaxSessionsBehavior.RefuseSignIn);
        var first = await SignedInBrowserAsync(host, "alice");
        var firstId = await first.GetTextAsync("/id");
        var second = host.CreateBrowser();
        await second.GetTextAsync("/set?key=cart&value=3-items");
        var secondId = await second.GetTextAsync("/id");
        using var refusals = new MetricCollector<long>(host.Services.GetRequiredService<IMeterFactory>(), ServerSideSessionDiagnostics.MeterName, ServerSideSessionDiagnostics.SignInsRefused);

        using var refused = await second.GetAsync("/signin?user=alice");

        Assert.Multiple(async () =>
        {
            Assert.That(refused.StatusCode, Is.EqualTo(HttpStatusCode.Conflict));
            Assert.That(await refused.Content.ReadAsStringAsync(), Is.EqualTo("refused: alice has 1"), "the exception names the user and the cap");
            Assert.That(refused.Headers.Contains("Set-Cookie"), Is.False, "no session or authentication cookie");
            Assert.That(await second.GetTextAsync("/whoami"), Is.EqualTo("anonymous"));
            Assert.That(await second.GetTextAsync("/id"), Is.EqualTo(secondId), "the browser keeps the session it had");
            Assert.That(await second.GetTextAsync("/get?key=cart"), Is.EqualTo("3-items"));
            Assert.That(await first.GetTextAsync("/whoami"), Is.EqualTo("alice"));
            Assert.That(await first.GetTextAsync("/id"), Is.EqualTo(firstId));
            Assert.That(_ended, Is.Empty);
            Assert.That(refusals.GetMeasurementSnapshot().Where(m => Equals(m.Tags["reason"], SessionEndReason.SessionLimit)).Sum(m => m.Value), Is.EqualTo(1));
            Assert.That(host.Logs.GetSnapshot().Count(l => l.Id.Name == "SignInRefused"), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task RefuseSignIn_OverAnotherUsersCurrentSignIn_Answers409_AndThatUserStaysSignedIn()
    {
        await using var host = await StartAsync(cap: 1, MaxSessionsBehavior.RefuseSignIn);
        await SignedInBrowserAsync(host, "alice");
        var shared = await SignedInBrowserAsync(host, "bob");
        var bobsSession = await shared.GetTextAsync("/id");

        using var refused = await shared.GetAsync("/signin?user=alice");   // the cookie handler renews over bob's sign-in

        Assert.Multiple(async () =>
        {
            Assert.That(refused.StatusCode, Is.EqualTo(HttpStatusCode.Conflict), "the refusal comes out of SignInAsync, not as a 500 at the end");
            Assert.That(await shared.GetTextAsync("/whoami"), Is.EqualTo("bob"));
            Assert.That(await shared.GetTextAsync("/id"), Is.EqualTo(bobsSession));
            Assert.That(await host.Services.GetRequiredService<ISessionManager>().ListForUserAsync("alice"), Has.Count.EqualTo(1));
        });
    }

    [Test]
    public async Task BindToUser_CommittedByTheApp_IsRefusedAtTheCap_AndTheRequestStillAnswers()
    {
        await using var host = await StartAsync(cap: 1, MaxSessionsBehavior.RefuseSignIn);
        var first = host.CreateBrowser();
        var second = host.CreateBrowser();

        var bound = await first.GetTextAsync("/bind-now?user=alice");
        using var refused = await second.GetAsync("/bind-now?user=alice");
        using var after = await second.GetAsync("/id");

        Assert.Multiple(async () =>
        {
            Assert.That(bound, Is.EqualTo("bound"));
            Assert.That(refused.StatusCode, Is.EqualTo(HttpStatusCode.Conflict), "no 500: the request's changes were dropped, so no later commit retries them");
            Assert.That(await host.Services.GetRequiredService<ISessionManager>().ListForUserAsync("alice"), Has.Count.EqualTo(1));
        });
    }

    [Test]
    public async Task TheSelector_GivesEachUserItsCap()
    {
        await using var host = await StartAsync(cap: 0, selector: c => ValueTask.FromResult(c.Principal.FindFirst(ClaimTypes.Name)?.Value == "admin" ? 1 : 0));
        var admin1 = await SignedInBrowserAsync(host, "admin");
        var admin2 = await SignedInBrowserAsync(host, "admin");
        var users = new List<HttpClient>();
        for (var i = 0; i < 3; i++)
        {
            users.Add(await SignedInBrowserAsync(host, "user"));
        }

        Assert.Multiple(async () =>
        {
            Assert.That(await admin1.GetTextAsync("/whoami"), Is.EqualTo("anonymous"), "administrators: one session");
            Assert.That(await admin2.GetTextAsync("/whoami"), Is.EqualTo("admin"));
            foreach (var user in users)
            {
                Assert.That(await user.GetTextAsync("/whoami"), Is.EqualTo("user"), "no cap for the others");
            }
        });
    }

    [Test]
    public async Task ASelectorThatReturnsANegativeCap_FailsTheSignIn_NamingTheOption_AndStoresNothing()
    {
        await using var host = await StartAsync(cap: 0, selector: _ => ValueTask.FromResult(-1));
        var browser = host.CreateBrowser();

        using var response = await browser.GetAsync("/signin?user=alice");

        Assert.Multiple(async () =>
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.InternalServerError));
            Assert.That(host.Logs.GetSnapshot().Any(l => l.Exception?.Message.Contains("MaxSessionsPerUserSelector", StringComparison.Ordinal) == true), Is.True);
            Assert.That(await browser.GetTextAsync("/whoami"), Is.EqualTo("anonymous"));
            Assert.That(await host.Services.GetRequiredService<ISessionManager>().ListForUserAsync("alice"), Is.Empty);
        });
    }

    [Test]
    public async Task ASessionEndedByTheCap_EndsWhatIsHeldOpenForIt()
    {
        await using var host = await StartAsync(cap: 1);
        var first = await SignedInBrowserAsync(host, "alice");
        using var stream = await first.GetAsync("/wait-ended", HttpCompletionOption.ResponseHeadersRead);
        var body = new StreamReader(await stream.Content.ReadAsStreamAsync());
        Assert.That(await body.ReadLineAsync(), Is.EqualTo("waiting"));

        await SignedInBrowserAsync(host, "alice");
        var rest = body.ReadToEndAsync();

        Assert.That(await rest.WaitAsync(TimeSpan.FromSeconds(10)), Is.EqualTo("ended"), "the held stream ends with the session, not at the request's timeout");
    }

    [TestCase(MaxSessionsBehavior.EndLeastRecentlyUsed)]
    [TestCase(MaxSessionsBehavior.RefuseSignIn)]
    public async Task FiftySimultaneousSignIns_FromFiftyBrowsers_LeaveExactlyTheCap(MaxSessionsBehavior behavior)
    {
        const int cap = 3;
        await using var host = await StartAsync(cap, behavior);
        var browsers = Enumerable.Range(0, 50).Select(_ => host.CreateBrowser()).ToList();
        var (statuses, signedIn) = await SignInRace.RunAsync(browsers, "alice");

        Assert.Multiple(async () =>
        {
            Assert.That(await host.Services.GetRequiredService<ISessionManager>().ListForUserAsync("alice"), Has.Count.EqualTo(cap));
            Assert.That(signedIn, Is.EqualTo(cap), "exactly the cap of browsers is signed in");
            Assert.That(statuses.Count(s => s == HttpStatusCode.OK), Is.EqualTo(behavior == MaxSessionsBehavior.RefuseSignIn ? cap : 50));
            Assert.That(statuses.Count(s => s == HttpStatusCode.Conflict), Is.EqualTo(behavior == MaxSessionsBehavior.RefuseSignIn ? 50 - cap : 0));
            Assert.That(_ended.Count(e => e.Reason == SessionEndReason.SessionLimit), Is.EqualTo(behavior == MaxSessionsBehavior.RefuseSignIn ? 0 : 50 - cap));
        });
    }
}
