using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using SessionMiddleware.Cookies;
using SessionMiddleware.Session;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>The request flow of DESIGN.md §1 through a real Kestrel host and a real SQLite file.</summary>
public sealed class MiddlewareTests : TempFolderTest
{
    [Test]
    public async Task Request_WithoutCookieAndWithoutWrite_StoresNothingAndSetsNoCookie()
    {
        FaultyStore? store = null;
        await using var host = await SessionTestHost.StartAsync(Folder.Path, services: s => s.UseStore(sp =>
            store = new FaultyStore(ActivatorUtilities.CreateInstance<Storage.Sqlite.SqliteSessionStore>(sp))));
        var client = host.CreateRawClient();

        using var read = await client.GetAsync("/get?key=a");
        using var nothing = await client.GetAsync("/nothing");

        Assert.Multiple(() =>
        {
            Assert.That(read.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(read.SetCookies(host.CookieName), Is.Empty);
            Assert.That(nothing.SetCookies(host.CookieName), Is.Empty);
            Assert.That(store!.TotalCalls, Is.Zero, "no database call at all");
            Assert.That(host.CountRows(), Is.Zero);
        });
    }

    [Test]
    public async Task FirstWrite_CreatesOneRowAndSetsTheCookieOnce_WithNoStore()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path);
        var client = host.CreateRawClient();

        using var response = await client.GetAsync("/set?key=a&value=1");

        var cookies = response.SetCookies(host.CookieName);
        Assert.Multiple(() =>
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(cookies, Has.Count.EqualTo(1));
            Assert.That(cookies[0], Does.Contain("httponly").IgnoreCase);
            Assert.That(cookies[0], Does.Contain("samesite=lax").IgnoreCase);
            Assert.That(cookies[0], Does.Contain("path=/").IgnoreCase);
            Assert.That(cookies[0], Does.Not.Contain("secure;").IgnoreCase, "HTTP request under SameAsRequest");
            Assert.That(response.Headers.CacheControl?.NoStore, Is.True);
            Assert.That(host.CountRows(), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task NextRequest_WithTheCookie_ReadsTheWrite()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path);
        var browser = host.CreateBrowser();

        await browser.GetTextAsync("/set?key=greeting&value=hello");
        using var second = await browser.GetAsync("/get?key=greeting");

        Assert.Multiple(async () =>
        {
            Assert.That(await second.Content.ReadAsStringAsync(), Is.EqualTo("hello"));
            Assert.That(second.SetCookies(host.CookieName), Is.Empty, "the cookie is set once, not on every response");
            Assert.That(host.CountRows(), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task RemoveAndClear_ArePersisted()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");
        await browser.GetTextAsync("/set?key=b&value=2");
        await browser.GetTextAsync("/set?key=c&value=3");

        await browser.GetTextAsync("/remove?key=b");
        Assert.That(await browser.GetTextAsync("/keys"), Is.EqualTo("a,c"));

        await browser.GetTextAsync("/clear");
        Assert.That(await browser.GetTextAsync("/keys"), Is.EqualTo(""));
        Assert.That(host.CountRows(), Is.EqualTo(1), "a cleared session keeps its row");
    }

    [Test]
    public async Task RemovingAnAbsentKey_OrClearingAnEmptySession_WritesNothing()
    {
        FaultyStore? store = null;
        await using var host = await SessionTestHost.StartAsync(Folder.Path, services: s => s.UseStore(sp =>
            store = new FaultyStore(ActivatorUtilities.CreateInstance<Storage.Sqlite.SqliteSessionStore>(sp))));
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");
        await browser.GetTextAsync("/remove?key=a");
        var writesBefore = store!.Updates + store.Creates + store.Touches;

        await browser.GetTextAsync("/remove?key=flash");
        await browser.GetTextAsync("/clear");

        Assert.That(store.Updates + store.Creates + store.Touches, Is.EqualTo(writesBefore));
    }

    [Test]
    public async Task Keys_AreCaseSensitive()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path);
        var browser = host.CreateBrowser();

        await browser.GetTextAsync("/set?key=Name&value=upper");
        await browser.GetTextAsync("/set?key=name&value=lower");

        Assert.Multiple(async () =>
        {
            Assert.That(await browser.GetTextAsync("/get?key=Name"), Is.EqualTo("upper"));
            Assert.That(await browser.GetTextAsync("/get?key=name"), Is.EqualTo("lower"));
            Assert.That(await browser.GetTextAsync("/get?key=NAME"), Is.EqualTo("(none)"));
            Assert.That(await browser.GetTextAsync("/keys"), Is.EqualTo("Name,name"));
        });
    }

    [Test]
    public async Task Set_CopiesTheValue_AndTryGetValueReturnsACopy()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, endpoints: app =>
        {
            app.MapGet("/mutate", (HttpContext c) =>
            {
                var value = new byte[] { 1, 2, 3 };
                c.Session.Set("bytes", value);
                value[0] = 99;
                c.Session.TryGetValue("bytes", out var read);
                read![1] = 98;
                return "ok";
            });
            app.MapGet("/bytes", (HttpContext c) => c.Session.TryGetValue("bytes", out var v) ? string.Join(",", v) : "(none)");
        });
        var browser = host.CreateBrowser();

        await browser.GetTextAsync("/mutate");

        Assert.That(await browser.GetTextAsync("/bytes"), Is.EqualTo("1,2,3"));
    }

    [Test]
    public async Task Int32AndStringExtensions_RoundTrip()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path);
        var browser = host.CreateBrowser();

        var counts = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            counts.Add(await browser.GetTextAsync("/count"));
        }

        Assert.That(counts, Is.EqualTo(new[] { "1", "2", "3" }));
    }

    [Test]
    public async Task Redirect_ThenImmediateNextRequest_SeesTheWrite()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, endpoints: app =>
            app.MapGet("/login", (HttpContext c) =>
            {
                c.Session.SetString("user", "alice");
                return Results.Redirect("/get?key=user");
            }));
        var browser = host.CreateBrowser();

        using var redirect = await browser.GetAsync("/login");
        Assert.That(redirect.StatusCode, Is.EqualTo(HttpStatusCode.Redirect));
        var location = redirect.Headers.Location!.ToString();

        Assert.That(await browser.GetTextAsync(location), Is.EqualTo("alice"));
    }

    [Test]
    public async Task ChangeMadeAfterTheResponseStarted_IsCommittedWhenTheRequestEnds()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, endpoints: app =>
            app.MapGet("/late", async (HttpContext c) =>
            {
                c.Session.SetString("early", "1");
                await c.Response.WriteAsync("started");
                await c.Response.Body.FlushAsync();
                c.Session.SetString("late", "2");
            }));
        var browser = host.CreateBrowser();

        Assert.That(await browser.GetTextAsync("/late"), Is.EqualTo("started"));

        Assert.Multiple(async () =>
        {
            Assert.That(await browser.GetTextAsync("/get?key=early"), Is.EqualTo("1"));
            Assert.That(await browser.GetTextAsync("/get?key=late"), Is.EqualTo("2"));
        });
    }

    [Test]
    public async Task RequestThatThrows_DoesNotCommitItsChanges()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, endpoints: app =>
            app.MapGet("/fail", (HttpContext c) =>
            {
                c.Session.SetString("a", "changed");
                throw new InvalidOperationException("boom");
            }));
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=original");

        using var failed = await browser.GetAsync("/fail");

        Assert.Multiple(async () =>
        {
            Assert.That((int)failed.StatusCode, Is.EqualTo(500));
            Assert.That(await browser.GetTextAsync("/get?key=a"), Is.EqualTo("original"));
        });
    }

    [Test]
    public async Task ValidCookie_ForAMissingRow_GivesAnEmptySession_AndAWriteGetsANewId()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path);
        var client = host.CreateRawClient();
        using var first = await client.GetAsync("/set?key=a&value=1");
        var cookie = first.SetCookieValue(host.CookieName)!;
        using (var db = host.OpenDatabase())
        using (var delete = db.CreateCommand())
        {
            delete.CommandText = "DELETE FROM sessions";
            delete.ExecuteNonQuery();
        }

        var header = $"{host.CookieName}={cookie}";
        var read = await client.GetTextAsync("/get?key=a", header);
        using var write = await client.SendWithCookieAsync("/set?key=b&value=2", header);
        var newCookie = write.SetCookieValue(host.CookieName);

        Assert.Multiple(() =>
        {
            Assert.That(read, Is.EqualTo("(none)"));
            Assert.That(newCookie, Is.Not.Null.And.Not.EqualTo(cookie), "strict mode: the presented ID is never adopted");
            Assert.That(SecretOf(host, newCookie!), Is.Not.EqualTo(SecretOf(host, cookie)));
            Assert.That(host.CountRows(), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task ExpiredSession_IsEmpty_ItsRowIsDeleted_AndAWriteGetsANewId()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o => o.IdleTimeout = TimeSpan.FromMinutes(20));
        var client = host.CreateRawClient();
        using var first = await client.GetAsync("/set?key=a&value=1");
        var header = $"{host.CookieName}={first.SetCookieValue(host.CookieName)}";
        var id = host.SessionIdOf(header);

        host.Time.Advance(TimeSpan.FromMinutes(19));
        Assert.That(await client.GetTextAsync("/get?key=a", header), Is.EqualTo("1"), "still alive before the idle timeout");

        host.Time.Advance(TimeSpan.FromMinutes(21));
        var afterExpiry = await client.GetTextAsync("/get?key=a", header);
        var rowsAfterLoad = host.CountRows();
        using var write = await client.SendWithCookieAsync("/set?key=b&value=2", header);

        Assert.Multiple(() =>
        {
            Assert.That(afterExpiry, Is.EqualTo("(none)"));
            Assert.That(rowsAfterLoad, Is.Zero, "the expired row is deleted when found");
            Assert.That(write.SetCookieValue(host.CookieName), Is.Not.Null);
            Assert.That(host.SessionIdOf(write.SetCookieValue(host.CookieName) ?? ""), Is.Not.EqualTo(id), "never the presented ID");
        });
    }

    [Test]
    public async Task Database_NeverContainsTheCookieOrTheSecretId_OnlyItsHash()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path);
        var client = host.CreateRawClient();
        using var response = await client.GetAsync("/set?key=a&value=1");
        var cookie = response.SetCookieValue(host.CookieName)!;
        var secret = SecretOf(host, cookie);
        var id = await client.GetTextAsync("/id", $"{host.CookieName}={cookie}");
        await host.App.StopAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();

        var bytes = Directory.GetFiles(Folder.Path, "sessions.db*").SelectMany(File.ReadAllBytes).ToArray();
        // The key: the ID's issue time (its first 6 bytes), then the first 26 bytes of the whole ID's SHA-256.
        byte[] key = [.. secret.AsSpan(0, 6), .. SHA256.HashData(secret).AsSpan(0, 26)];

        Assert.Multiple(() =>
        {
            Assert.That(bytes.AsSpan().IndexOf(secret), Is.EqualTo(-1), "raw secret ID stored");
            Assert.That(bytes.AsSpan().IndexOf(secret.AsSpan(6)), Is.EqualTo(-1), "the secret ID's random bytes stored");
            Assert.That(bytes.AsSpan().IndexOf(Encoding.ASCII.GetBytes(cookie)), Is.EqualTo(-1), "cookie value stored");
            Assert.That(bytes.AsSpan().IndexOf(key), Is.GreaterThanOrEqualTo(0), "the key is what is stored");
            Assert.That(id, Is.EqualTo(Convert.ToHexStringLower(key)), "ISession.Id is the public hash handle");
        });
    }

    [Test]
    public async Task ReadOnlyRequests_DoNotWriteWithinTouchInterval_AndDoAfterIt()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o => o.TouchInterval = TimeSpan.FromSeconds(60));
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");
        var created = LastAccess(host);

        host.Time.Advance(TimeSpan.FromSeconds(30));
        await browser.GetTextAsync("/get?key=a");
        var afterEarlyRead = LastAccess(host);

        host.Time.Advance(TimeSpan.FromSeconds(31));
        await browser.GetTextAsync("/get?key=a");
        var afterLateRead = LastAccess(host);

        Assert.Multiple(() =>
        {
            Assert.That(afterEarlyRead, Is.EqualTo(created), "no write within TouchInterval");
            Assert.That(afterLateRead, Is.EqualTo(created + 61), "last_access recorded once TouchInterval passed");
        });
    }

    [Test]
    public async Task TouchIntervalZero_RecordsEveryAccess()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o => o.TouchInterval = TimeSpan.Zero);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");
        var created = LastAccess(host);

        host.Time.Advance(TimeSpan.FromSeconds(1));
        await browser.GetTextAsync("/get?key=a");

        Assert.That(LastAccess(host), Is.EqualTo(created + 1));
    }

    [Test]
    public async Task TouchIntervalZero_WithinTheSecondAlreadyRecorded_WritesNothing()
    {
        // last_access is stored in whole seconds: a touch within the recorded second would write the same value again.
        FaultyStore store = null!;
        await using var host = await SessionTestHost.StartAsync(
            Folder.Path,
            o => o.TouchInterval = TimeSpan.Zero,
            services: s => s.UseStore(sp => store = new FaultyStore(ActivatorUtilities.CreateInstance<Storage.Sqlite.SqliteSessionStore>(sp))));
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");
        var created = LastAccess(host);

        host.Time.Advance(TimeSpan.FromMilliseconds(400));
        await browser.GetTextAsync("/get?key=a");
        await browser.GetTextAsync("/get?key=a");
        var touchesWithinTheSecond = store.Touches;

        host.Time.Advance(TimeSpan.FromSeconds(1));
        await browser.GetTextAsync("/get?key=a");

        Assert.Multiple(() =>
        {
            Assert.That(touchesWithinTheSecond, Is.Zero);
            Assert.That(store.Touches, Is.EqualTo(1), "the next second is recorded");
            Assert.That(LastAccess(host), Is.EqualTo(created + 1));
        });
    }

    [Test]
    public async Task RegularlyUsedSession_OutlivesTheIdleTimeout()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o =>
        {
            o.IdleTimeout = TimeSpan.FromMinutes(5);
            o.TouchInterval = TimeSpan.FromMinutes(1);
        });
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");

        for (var i = 0; i < 10; i++)
        {
            host.Time.Advance(TimeSpan.FromMinutes(2));
            Assert.That(await browser.GetTextAsync("/get?key=a"), Is.EqualTo("1"), $"after {(i + 1) * 2} minutes");
        }
    }

    [Test]
    public async Task NewSession_ClearedBeforeTheEnd_StoresNothing()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, endpoints: app =>
            app.MapGet("/setclear", (HttpContext c) =>
            {
                c.Session.SetString("a", "1");
                c.Session.Clear();
                return "ok";
            }));
        var client = host.CreateRawClient();

        using var response = await client.GetAsync("/setclear");

        Assert.Multiple(() =>
        {
            Assert.That(response.SetCookies(host.CookieName), Is.Empty);
            Assert.That(host.CountRows(), Is.Zero);
        });
    }

    [Test]
    public async Task Set_BeyondMaxSessionBytes_ThrowsAtTheCallNamingTheLimit_AndStoresNothing()
    {
        string? message = null;
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o => o.MaxSessionBytes = 1000, endpoints: app =>
            app.MapGet("/big", (HttpContext c, int size) =>
            {
                try
                {
                    c.Session.Set("big", new byte[size]);
                    return "stored";
                }
                catch (InvalidOperationException ex)
                {
                    message = ex.Message;
                    return "refused";
                }
            }));
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=small&value=x");

        var refused = await browser.GetTextAsync("/big?size=2000");
        var keysAfterRefusal = await browser.GetTextAsync("/keys");
        var accepted = await browser.GetTextAsync("/big?size=900");

        Assert.Multiple(() =>
        {
            Assert.That(refused, Is.EqualTo("refused"));
            Assert.That(message, Does.Contain("MaxSessionBytes").And.Contain("1000"));
            Assert.That(keysAfterRefusal, Is.EqualTo("small"), "nothing stored by the refused Set");
            Assert.That(accepted, Is.EqualTo("stored"), "a value under the limit fits");
        });
    }

    [Test]
    public async Task ConcurrentCommitsThatTogetherExceedMaxSessionBytes_TheLaterFails_AndTheEarlierStands()
    {
        // Each request stays under the limit on its own; merged after the version conflict, they would not.
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o => o.MaxSessionBytes = 1000, endpoints: app =>
            app.MapGet("/race", async (HttpContext c) =>
            {
                var session = (ServerSideSession)c.Session;
                session.Set("mine", new byte[600]);

                // Meanwhile another server commits a large value to the same session.
                var theirs = new Dictionary<string, byte[]>(StringComparer.Ordinal) { ["a"] = "1"u8.ToArray(), ["theirs"] = new byte[600] };
                var size = SessionSerializer.HeaderSize(2) + SessionSerializer.EntrySize("a", 1) + SessionSerializer.EntrySize("theirs", 600);
                var store = c.RequestServices.GetRequiredService<IServerSideSessionStore>();
                var result = await store.UpdateAsync(session.Key!, SessionSerializer.Serialize(theirs, size), session.Version);
                return result.Status.ToString();
            }));
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");

        using var race = await browser.GetAsync("/race");
        var keys = await browser.GetTextAsync("/keys");

        Assert.Multiple(() =>
        {
            Assert.That(race.StatusCode, Is.EqualTo(HttpStatusCode.InternalServerError), "the lost write is not reported as a success");
            Assert.That(keys, Is.EqualTo("a,theirs"), "the concurrent commit stands, nothing of the failed request");
            var log = host.Logs.GetSnapshot().Single(r => r.Id.Name == "CommitFailed");
            Assert.That(log.Exception!.Message, Does.Contain("MaxSessionBytes").And.Contain("1000").And.Contain("concurrent commit"));
        });
    }

    [Test]
    public async Task ServerSideSession_ExposesCreatedAtLastAccessAndNoUser()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o => o.TouchInterval = TimeSpan.Zero, endpoints: app =>
            app.MapGet("/info", (HttpContext c) =>
            {
                var s = c.GetServerSideSession();
                return $"{s.CreatedAt.ToUnixTimeSeconds()}|{s.LastAccessAt.ToUnixTimeSeconds()}|{s.UserId ?? "null"}|{ReferenceEquals(s, c.Session)}";
            }));
        var browser = host.CreateBrowser();
        var start = host.Time.GetUtcNow().ToUnixTimeSeconds();
        await browser.GetTextAsync("/set?key=a&value=1");

        host.Time.Advance(TimeSpan.FromSeconds(90));
        await browser.GetTextAsync("/get?key=a");

        Assert.That(await browser.GetTextAsync("/info"), Is.EqualTo($"{start}|{start + 90}|null|True"));
    }

    [Test]
    public async Task ConcurrentRequests_ChangingDifferentKeys_AllKeepTheirChange()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=seed&value=0");

        var tasks = Enumerable.Range(0, 40).Select(i => browser.GetTextAsync($"/set?key=k{i}&value={i}"));
        await Task.WhenAll(tasks);

        var keys = (await browser.GetTextAsync("/keys")).Split(',');
        Assert.That(keys, Has.Length.EqualTo(41));
    }

    private static byte[] SecretOf(SessionTestHost host, string cookie) =>
        host.Services.GetRequiredService<SessionIdProtector>().Unprotect(cookie, out _) ?? throw new AssertionException("cookie not readable");

    private static long LastAccess(SessionTestHost host)
    {
        using var db = host.OpenDatabase();
        using var command = db.CreateCommand();
        command.CommandText = "SELECT last_access FROM sessions";
        return (long)command.ExecuteScalar()!;
    }
}
