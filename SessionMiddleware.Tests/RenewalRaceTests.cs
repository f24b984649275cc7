using System.Net;
using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using SessionMiddleware.Storage.Sqlite;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// A request of a browser still in flight while another request of the same browser renews the session's ID: its change
/// follows the session to the new key, it never expires the browser's new cookie, and a request that loads after the
/// renewal with the old cookie never reaches the renewed session. Two overlapping requests over real HTTP, ordered by gates.
/// </summary>
public sealed class RenewalRaceTests : TempFolderTest
{
    [Test]
    public async Task ParallelWrite_WhileAnotherRequestRenewsTheId_FollowsTheSessionToItsNewKey()
    {
        var gate = new Gate();
        await using var host = await StartAsync(gate);
        var (browser, jar, oldId, oldCookie) = await BrowserWithSessionAsync(host);

        using var race = await AcrossAsync(gate, browser.GetAsync("/gated-write"), () => browser.GetTextAsync("/renew-write"));

        Assert.Multiple(async () =>
        {
            Assert.That(race.Held.StatusCode, Is.EqualTo(HttpStatusCode.OK), "A's write was stored, under the new key");
            Assert.That(race.Held.SetCookies(host.CookieName), Is.Empty, "A neither expires the browser's cookie nor hands out the new one");
            Assert.That(race.Meanwhile, Is.Not.EqualTo(oldId));
            Assert.That(await browser.GetTextAsync("/id"), Is.EqualTo(race.Meanwhile), "the browser's cookie is the renewed session's");
            Assert.That(await browser.GetTextAsync("/get?key=a"), Is.EqualTo("1"));
            Assert.That(await browser.GetTextAsync("/get?key=fromB"), Is.EqualTo("B"));
            Assert.That(await browser.GetTextAsync("/get?key=fromA"), Is.EqualTo("A"), "A's write followed the session");
            Assert.That(host.CountRows(), Is.EqualTo(1), "no orphaned row");
        });
        await AssertOldCookieGetsANewEmptySessionAsync(host, oldCookie, oldId, race.Meanwhile);
    }

    [Test]
    public async Task ReadOnlyRequest_WithTouchDue_WhileAnotherRequestRenewsTheId_KeepsTheBrowsersNewCookie()
    {
        var gate = new Gate();
        await using var host = await StartAsync(gate);
        var (browser, jar, oldId, oldCookie) = await BrowserWithSessionAsync(host);
        host.Time.Advance(TimeSpan.FromMinutes(2));   // past TouchInterval: A's commit records the access

        using var race = await AcrossAsync(gate, browser.GetAsync("/gated-read"), () => browser.GetTextAsync("/renew-write"));

        Assert.Multiple(async () =>
        {
            Assert.That(race.Held.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(await race.Held.Content.ReadAsStringAsync(), Is.EqualTo("1"));
            Assert.That(race.Held.SetCookies(host.CookieName), Is.Empty, "A does not expire the cookie the browser got from B");
            Assert.That(await browser.GetTextAsync("/id"), Is.EqualTo(race.Meanwhile));
            Assert.That(await browser.GetTextAsync("/get?key=a"), Is.EqualTo("1"));
            Assert.That(await browser.GetTextAsync("/get?key=fromB"), Is.EqualTo("B"));
            Assert.That(host.CountRows(), Is.EqualTo(1));
        });
        await AssertOldCookieGetsANewEmptySessionAsync(host, oldCookie, oldId, race.Meanwhile);
    }

    [Test]
    public async Task DoubleSignIn_TwoOverlappingBindToUserOfTheSameUser_TheBrowserStaysSignedInWithBothWrites()
    {
        var gate = new Gate();
        await using var host = await StartAsync(gate);
        var (browser, jar, oldId, oldCookie) = await BrowserWithSessionAsync(host);

        using var race = await AcrossAsync(gate, browser.GetAsync("/gated-bind?user=alice"), () => browser.GetTextAsync("/bind-write?user=alice"));

        var sessions = await host.Services.GetRequiredService<ISessionManager>().ListForUserAsync("alice");
        Assert.Multiple(async () =>
        {
            Assert.That(race.Held.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(await browser.GetTextAsync("/user"), Is.EqualTo("alice"), "still signed in");
            Assert.That(await browser.GetTextAsync("/id"), Is.EqualTo(race.Meanwhile));
            Assert.That(await browser.GetTextAsync("/get?key=a"), Is.EqualTo("1"));
            Assert.That(await browser.GetTextAsync("/get?key=fromA"), Is.EqualTo("A"));
            Assert.That(await browser.GetTextAsync("/get?key=fromB"), Is.EqualTo("B"));
            Assert.That(sessions.Select(s => s.Id), Is.EqualTo(new[] { race.Meanwhile }), "one session of alice, no orphan");
            Assert.That(host.CountRows(), Is.EqualTo(1));
        });
        await AssertOldCookieGetsANewEmptySessionAsync(host, oldCookie, oldId, race.Meanwhile);
    }

    [Test]
    public async Task DoubleSignIn_ThroughTheTicketStore_TheBrowserStaysSignedInToOneSession()
    {
        var gate = new Gate();
        await using var host = await SessionTestHost.StartAsync(
            Folder.Path,
            services: s =>
            {
                s.AddTicketStore();
                s.Services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme).AddCookie();
            },
            endpoints: app =>
            {
                app.UseAuthentication();
                app.MapGet("/signin", async (HttpContext c, bool? gated) =>
                {
                    if (gated == true)
                    {
                        gate.Entered.SetResult();
                        await gate.Release.Task;
                    }

                    var identity = new ClaimsIdentity([new Claim(ClaimTypes.NameIdentifier, "alice"), new Claim(ClaimTypes.Name, "alice")], CookieAuthenticationDefaults.AuthenticationScheme);
                    await c.SignInAsync(new ClaimsPrincipal(identity));
                    return "signed in";
                });
                app.MapGet("/whoami", (HttpContext c) => c.User.Identity?.IsAuthenticated == true ? c.User.Identity.Name! : "anonymous");
            });
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");

        var a = browser.GetAsync("/signin?gated=true");
        await gate.Entered.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await browser.GetTextAsync("/signin");
        var afterB = await browser.GetTextAsync("/id");
        gate.Release.SetResult();
        using var responseA = await a;

        var sessions = await host.Services.GetRequiredService<ISessionManager>().ListForUserAsync("alice");
        Assert.Multiple(async () =>
        {
            Assert.That(responseA.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(await browser.GetTextAsync("/whoami"), Is.EqualTo("alice"), "the sign-in whose response came last holds the row's ticket");
            Assert.That(await browser.GetTextAsync("/id"), Is.EqualTo(afterB), "one session: the second sign-in took the first one's ID");
            Assert.That(await browser.GetTextAsync("/get?key=a"), Is.EqualTo("1"));
            Assert.That(sessions, Has.Count.EqualTo(1));
        });
    }

    [Test]
    public async Task OverlappingSignIns_OfTwoDifferentUsers_TheLaterFailsWith500_AndTheBrowserKeepsTheFirst()
    {
        var gate = new Gate();
        await using var host = await StartAsync(gate);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");

        using var race = await AcrossAsync(gate, browser.GetAsync("/gated-bind?user=bob"), () => browser.GetTextAsync("/bind-write?user=alice"));

        Assert.Multiple(async () =>
        {
            Assert.That((int)race.Held.StatusCode, Is.EqualTo(500), "bob's sign-in could not be applied: never a 200 for it");
            Assert.That(race.Held.SetCookies(host.CookieName), Is.Empty);
            Assert.That(await browser.GetTextAsync("/id"), Is.EqualTo(race.Meanwhile));
            Assert.That(await browser.GetTextAsync("/user"), Is.EqualTo("alice"));
            Assert.That(await browser.GetTextAsync("/get?key=fromA"), Is.EqualTo("(none)"));
            Assert.That(host.CountRows(), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task Revoke_OfTheIdASessionHadBeforeItWasRenewed_EndsTheRenewedSession()
    {
        var gate = new Gate();
        await using var host = await StartAsync(gate);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/bind?user=alice");
        await browser.GetTextAsync("/set?key=a&value=1");
        var listed = await browser.GetTextAsync("/id");   // what an admin page showed a moment ago
        var manager = host.Services.GetRequiredService<ISessionManager>();
        var renewedId = await browser.GetTextAsync("/regenerate");

        var revoked = await manager.RevokeAsync(listed);

        Assert.Multiple(async () =>
        {
            Assert.That(renewedId, Is.Not.EqualTo(listed));
            Assert.That(revoked, Is.True);
            Assert.That(await manager.ListForUserAsync("alice"), Is.Empty, "the session does not live on under its new ID");
            Assert.That(host.CountRows(), Is.Zero);
            Assert.That(await browser.GetTextAsync("/get?key=a"), Is.EqualTo("(none)"));
            Assert.That(await browser.GetTextAsync("/user"), Is.EqualTo("(none)"));
        });
    }

    [Test]
    public async Task ParallelWrite_WhenTheSessionIsRevokedAndRenewedMeanwhile_Answers500_AndNothingComesBack()
    {
        // B renews, then the renewed session is revoked: A's write finds neither key and fails; nothing is resurrected.
        var gate = new Gate();
        await using var host = await StartAsync(gate);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/bind?user=alice");
        await browser.GetTextAsync("/set?key=a&value=1");

        var a = browser.GetAsync("/gated-write");
        await gate.Entered.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var newId = await browser.GetTextAsync("/renew-write");
        Assert.That(await host.Services.GetRequiredService<ISessionManager>().RevokeAsync(newId), Is.True);
        gate.Release.SetResult();
        using var responseA = await a;

        Assert.Multiple(async () =>
        {
            Assert.That((int)responseA.StatusCode, Is.EqualTo(500));
            Assert.That(host.CountRows(), Is.Zero);
            Assert.That(await browser.GetTextAsync("/get?key=fromA"), Is.EqualTo("(none)"));
        });
    }

    [Test]
    public async Task PlantedSession_ARequestHeldAcrossTheVictimsSignIn_CannotWriteIntoTheSignedInSession()
    {
        // The attacker planted S in the victim's browser and holds a request of S open; the victim signs in through an
        // endpoint that clears the session first. The attacker's write must not reach the signed-in session.
        var gate = new Gate();
        await using var host = await StartAsync(gate);
        var (victim, _, plantedId, plantedCookie) = await BrowserWithSessionAsync(host);
        var attacker = host.CreateRawClient();

        using var race = await AcrossAsync(gate, attacker.SendWithCookieAsync("/gated-write", plantedCookie), () => victim.GetTextAsync("/clear-bind-write?user=victim"));

        Assert.Multiple(async () =>
        {
            Assert.That(race.Meanwhile, Is.Not.EqualTo(plantedId));
            Assert.That((int)race.Held.StatusCode, Is.EqualTo(500), "never a 200 for a write that was not stored");
            Assert.That(race.Held.SetCookies(host.CookieName), Is.Empty);
            Assert.That(await victim.GetTextAsync("/id"), Is.EqualTo(race.Meanwhile));
            Assert.That(await victim.GetTextAsync("/user"), Is.EqualTo("victim"));
            Assert.That(await victim.GetTextAsync("/get?key=fromA"), Is.EqualTo("(none)"), "the attacker's write is not in the victim's session");
            Assert.That(await victim.GetTextAsync("/get?key=fromB"), Is.EqualTo("B"));
            Assert.That(host.CountRows(), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task ARequestHeldAcrossATicketStoreSignInOfTheSameUser_CannotWriteIntoTheRenewedSession()
    {
        // A ticket store sign-in renews the ID even when the session is already bound to that user (the browser had lost
        // its authentication cookie): it is a sign-in, so a request begun before it does not write into it either.
        var gate = new Gate();
        await using var host = await SessionTestHost.StartAsync(
            Folder.Path,
            services: s =>
            {
                s.AddTicketStore();
                s.Services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme).AddCookie();
            },
            endpoints: app =>
            {
                app.UseAuthentication();
                app.MapGet("/signin", async (HttpContext c) =>
                {
                    var identity = new ClaimsIdentity([new Claim(ClaimTypes.NameIdentifier, "alice"), new Claim(ClaimTypes.Name, "alice")], CookieAuthenticationDefaults.AuthenticationScheme);
                    await c.SignInAsync(new ClaimsPrincipal(identity));
                    return c.Session.Id;
                });
                app.MapGet("/gated-write", async (HttpContext c) =>
                {
                    gate.Entered.SetResult();
                    await gate.Release.Task;
                    c.Session.SetString("fromA", "A");
                    return "ok";
                });
                app.MapGet("/whoami", (HttpContext c) => c.User.Identity?.IsAuthenticated == true ? c.User.Identity.Name! : "anonymous");
            });
        var firstJar = new CookieContainer();
        var first = host.CreateBrowser(firstJar);
        await first.GetTextAsync("/set?key=a&value=1");
        var boundId = await first.GetTextAsync("/signin");

        // The same browser without its authentication cookie: only the session cookie, bound to alice.
        var jar = new CookieContainer();
        jar.Add(host.BaseAddress, firstJar.GetCookies(host.BaseAddress)[host.CookieName]!);
        var browser = host.CreateBrowser(jar);
        Assert.That(await browser.GetTextAsync("/whoami"), Is.EqualTo("anonymous"));

        using var race = await AcrossAsync(gate, browser.GetAsync("/gated-write"), () => browser.GetTextAsync("/signin"));

        Assert.Multiple(async () =>
        {
            Assert.That(race.Meanwhile, Is.Not.EqualTo(boundId), "the sign-in renewed the ID");
            Assert.That((int)race.Held.StatusCode, Is.EqualTo(500));
            Assert.That(await browser.GetTextAsync("/whoami"), Is.EqualTo("alice"));
            Assert.That(await browser.GetTextAsync("/id"), Is.EqualTo(race.Meanwhile));
            Assert.That(await browser.GetTextAsync("/get?key=a"), Is.EqualTo("1"), "a sign-in of the same user keeps the data");
            Assert.That(await browser.GetTextAsync("/get?key=fromA"), Is.EqualTo("(none)"));
        });
    }

    [Test]
    public async Task SignOut_RacingARenewalOfTheSameUser_EndsTheRenewedSessionToo()
    {
        var gate = new Gate();
        await using var host = await StartAsync(gate);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/bind?user=alice");
        await browser.GetTextAsync("/set?key=a&value=1");
        var manager = host.Services.GetRequiredService<ISessionManager>();

        using var race = await AcrossAsync(gate, browser.GetAsync("/gated-abandon"), () => browser.GetTextAsync("/regenerate"));

        Assert.Multiple(async () =>
        {
            Assert.That(race.Held.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(await manager.ListForUserAsync("alice"), Is.Empty, $"the renewed session {race.Meanwhile} ended with the sign-out");
            Assert.That(host.CountRows(), Is.Zero);
        });
    }

    [Test]
    public async Task SignOut_RacingAnotherUsersSignIn_LeavesTheOtherUsersSession()
    {
        var gate = new Gate();
        await using var host = await StartAsync(gate);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/bind?user=alice");
        var manager = host.Services.GetRequiredService<ISessionManager>();

        using var race = await AcrossAsync(gate, browser.GetAsync("/gated-abandon"), () => browser.GetTextAsync("/bind-write?user=bob"));

        Assert.Multiple(async () =>
        {
            Assert.That(race.Held.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That((await manager.ListForUserAsync("bob")).Select(s => s.Id), Is.EqualTo(new[] { race.Meanwhile }), "alice's sign-out does not end bob's session");
            Assert.That(await manager.ListForUserAsync("alice"), Is.Empty);
        });
    }

    [Test]
    public void RecentRenewals_RemembersAtMostCapacityRenewals_EachForAtMostItsLifetime()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UnixEpoch);
        var renewals = new SessionMiddleware.Concurrency.RecentRenewals(time);
        static byte[] Key(int i) => BitConverter.GetBytes(i);
        for (var i = 0; i <= SessionMiddleware.Concurrency.RecentRenewals.Capacity; i++)
        {
            renewals.Add(Key(i), Key(-i), Key(i), null, signIn: false);
        }

        Assert.Multiple(() =>
        {
            Assert.That(renewals.TryGet(Key(0), out _), Is.False, "the oldest is dropped past the capacity");
            Assert.That(renewals.TryGet(Key(1), out var kept), Is.True);
            Assert.That(kept!.NewKey, Is.EqualTo(Key(-1)));
        });

        time.Advance(SessionMiddleware.Concurrency.RecentRenewals.Lifetime + TimeSpan.FromSeconds(1));
        Assert.That(renewals.TryGet(Key(1), out _), Is.False, "forgotten after its lifetime");
    }

    [Test]
    public async Task WriteQueue_DisposedWhileAWriteOutlastsTheTimeout_TheWriteLoopEndsWithoutAnError()
    {
        var path = Path.Combine(Folder.Path, "queue.db");
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var queue = new SqliteWriteQueue(token => OpenAsync(path, token), NullLogger.Instance) { DisposeTimeout = TimeSpan.FromMilliseconds(10) };
        var stuck = queue.WriteAsync(
            async (_, _, _) =>
            {
                running.SetResult();
                await release.Task;
                return 1;
            },
            singleStatement: true,
            CancellationToken.None);
        await running.Task.WaitAsync(TimeSpan.FromSeconds(30));

        await queue.DisposeAsync();   // gives up waiting for the stuck write
        release.SetResult();
        await stuck.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.That(async () => await queue.Completion.WaitAsync(TimeSpan.FromSeconds(30)), Throws.Nothing, "no ObjectDisposedException from the write loop");
    }

    [Test]
    public async Task WriteQueue_ASingleStatementWriteThatFailsAfterItsStatementRan_InABatch_IsNotStored()
    {
        var path = Path.Combine(Folder.Path, "queue.db");
        await using (var setup = await OpenAsync(path, CancellationToken.None))
        {
            await using var create = setup.CreateCommand();
            create.CommandText = "CREATE TABLE t (x TEXT NOT NULL)";
            await create.ExecuteNonQueryAsync();
        }

        var batches = new List<int>();
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var queue = new SqliteWriteQueue(token => OpenAsync(path, token), NullLogger.Instance, batches.Add);
        var first = queue.WriteAsync(
            async (_, _, _) =>
            {
                running.SetResult();
                await release.Task;
                return 0;
            },
            singleStatement: true,
            CancellationToken.None);
        await running.Task.WaitAsync(TimeSpan.FromSeconds(30));

        // Both wait while the first runs, so the writer takes them in one group transaction.
        var failing = queue.WriteAsync<int>(
            async (connection, transaction, token) =>
            {
                await InsertAsync(connection, transaction, "failed", token);
                throw new InvalidOperationException("fails after its statement ran");
            },
            singleStatement: true,
            CancellationToken.None);
        var other = queue.WriteAsync((connection, transaction, token) => InsertAsync(connection, transaction, "other", token), singleStatement: true, CancellationToken.None);
        release.SetResult();
        await first;

        Assert.That(async () => await failing, Throws.InvalidOperationException);
        Assert.That(await other, Is.EqualTo(1));
        await using var check = await OpenAsync(path, CancellationToken.None);
        await using var select = check.CreateCommand();
        select.CommandText = "SELECT group_concat(x) FROM t";
        Assert.Multiple(async () =>
        {
            Assert.That(batches, Is.EqualTo(new[] { 1, 2 }), "the two writes ran in one group transaction");
            Assert.That(await select.ExecuteScalarAsync(), Is.EqualTo("other"), "the failed write's row was not committed; the other's was");
        });
    }

    private static async Task<SqliteConnection> OpenAsync(string path, CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        await connection.OpenAsync(cancellationToken);
        return connection;
    }

    private static async Task<int> InsertAsync(SqliteConnection connection, SqliteTransaction transaction, string value, CancellationToken cancellationToken)
    {
        await using var insert = connection.CreateCommand();
        insert.Transaction = transaction;
        insert.CommandText = "INSERT INTO t (x) VALUES ($x)";
        insert.Parameters.AddWithValue("$x", value);
        return await insert.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>A request that loads after the renewal with the old cookie gets a new empty session, never the renewed one.</summary>
    private static async Task AssertOldCookieGetsANewEmptySessionAsync(SessionTestHost host, string oldCookie, string oldId, string newId)
    {
        var attacker = host.CreateRawClient();
        using var response = await attacker.SendWithCookieAsync("/set?key=x&value=1", oldCookie);
        var issued = response.SetCookieValue(host.CookieName);
        Assert.That(issued, Is.Not.Null, "the old cookie's write gets a cookie of its own");
        var issuedCookie = $"{host.CookieName}={issued}";
        Assert.Multiple(async () =>
        {
            Assert.That(await attacker.GetTextAsync("/get?key=a", oldCookie), Is.EqualTo("(none)"), "the old cookie reads nothing");
            var issuedId = await attacker.GetTextAsync("/id", issuedCookie);
            Assert.That(issuedId, Is.Not.EqualTo(newId).And.Not.EqualTo(oldId), "a new session, neither the renewed one nor the old ID");
            Assert.That(await attacker.GetTextAsync("/get?key=a", issuedCookie), Is.EqualTo("(none)"));
            Assert.That(await attacker.GetTextAsync("/get?key=x", issuedCookie), Is.EqualTo("1"));
        });
    }

    /// <summary>A browser whose session holds a=1: its cookie jar, the session's ID and the cookie it was given.</summary>
    private static async Task<(HttpClient Browser, CookieContainer Jar, string Id, string Cookie)> BrowserWithSessionAsync(SessionTestHost host)
    {
        var jar = new CookieContainer();
        var browser = host.CreateBrowser(jar);
        await browser.GetTextAsync("/set?key=a&value=1");
        return (browser, jar, await browser.GetTextAsync("/id"), jar.GetCookieHeader(host.BaseAddress));
    }

    private Task<SessionTestHost> StartAsync(Gate gate) => SessionTestHost.StartAsync(Folder.Path, endpoints: app =>
    {
        app.MapGet("/gated-write", async (HttpContext c) =>
        {
            gate.Entered.SetResult();
            await gate.Release.Task;
            c.Session.SetString("fromA", "A");
            return "ok";
        });
        app.MapGet("/gated-read", async (HttpContext c) =>
        {
            gate.Entered.SetResult();
            await gate.Release.Task;
            return c.Session.GetString("a") ?? "(none)";
        });
        app.MapGet("/gated-bind", async (HttpContext c, string user) =>
        {
            gate.Entered.SetResult();
            await gate.Release.Task;
            c.GetServerSideSession().BindToUser(user);
            c.Session.SetString("fromA", "A");
            return c.Session.Id;
        });
        app.MapGet("/renew-write", (HttpContext c) =>
        {
            c.GetServerSideSession().RegenerateId();
            c.Session.SetString("fromB", "B");
            return c.Session.Id;
        });
        app.MapGet("/gated-abandon", async (HttpContext c) =>
        {
            await c.Session.LoadAsync();
            gate.Entered.SetResult();
            await gate.Release.Task;
            c.GetServerSideSession().Abandon();
            return "signed out";
        });
        app.MapGet("/clear-bind-write", (HttpContext c, string user) =>
        {
            c.Session.Clear();
            c.GetServerSideSession().BindToUser(user);
            c.Session.SetString("fromB", "B");
            return c.Session.Id;
        });
        app.MapGet("/bind-write", (HttpContext c, string user) =>
        {
            c.GetServerSideSession().BindToUser(user);
            c.Session.SetString("fromB", "B");
            return c.Session.Id;
        });
    });

    /// <summary>
    /// Starts a request that waits at the gate, runs <paramref name="meanwhile"/> while it is held there, then lets it
    /// finish: the held request loaded the session before, and commits after, whatever <paramref name="meanwhile"/> did.
    /// </summary>
    private static async Task<Race> AcrossAsync(Gate gate, Task<HttpResponseMessage> held, Func<Task<string>> meanwhile)
    {
        await gate.Entered.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var text = await meanwhile();
        gate.Release.SetResult();
        return new Race(await held, text);
    }

    /// <summary>The held request's response, and what the request run meanwhile answered.</summary>
    private sealed record Race(HttpResponseMessage Held, string Meanwhile) : IDisposable
    {
        public void Dispose() => Held.Dispose();
    }

    private sealed class Gate
    {
        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
