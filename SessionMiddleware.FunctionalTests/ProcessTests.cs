using System.Collections.Concurrent;
using System.Net;
using Microsoft.Data.Sqlite;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// Real processes on one SQLite file: several app processes writing at once, and a process killed with SIGKILL in the
/// middle of writing. Slow; they run in every build/test run (category "Process").
/// </summary>
[Category("Process")]
public sealed class ProcessTests : TempFolderTest
{
    [Test]
    public async Task TwoProcesses_OnOneFile_ManyClientsEach_NoErrorsAndNoLostWrites()
    {
        const int clientsPerProcess = 16;
        const int writesPerClient = 40;
        var db = Folder.File("shared.db");
        var keys = Folder.File("keys");
        await using var a = await ChildHost.StartAsync(db, keys);
        await using var b = await ChildHost.StartAsync(db, keys);
        var hosts = new[] { a, b };

        using var client = new HttpClient(new HttpClientHandler { UseCookies = false }) { Timeout = TimeSpan.FromMinutes(2) };
        var shared = await NewSessionAsync(client, a.BaseAddress);
        var errors = new ConcurrentBag<string>();
        var acknowledged = new ConcurrentBag<(string Cookie, string Key)>();

        await Task.WhenAll(Enumerable.Range(0, hosts.Length * clientsPerProcess).Select(async c =>
        {
            var host = hosts[c % hosts.Length];
            var own = await NewSessionAsync(client, host.BaseAddress);
            for (var n = 0; n < writesPerClient; n++)
            {
                // Alternate between the client's own session and the session shared by every client of both processes.
                var (cookie, key) = n % 2 == 0 ? (own, $"own-{n}") : (shared, $"c{c}-{n}");
                using var response = await SendAsync(client, new Uri(host.BaseAddress, $"/set?key={key}&value={n}"), cookie);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    acknowledged.Add((cookie, key));
                }
                else
                {
                    errors.Add($"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
                }
            }
        }));

        var lost = 0;
        foreach (var group in acknowledged.GroupBy(w => w.Cookie))
        {
            using var response = await SendAsync(client, new Uri(b.BaseAddress, "/keys"), group.Key);
            var stored = (await response.Content.ReadAsStringAsync()).Split(',').ToHashSet(StringComparer.Ordinal);
            lost += group.Count(w => !stored.Contains(w.Key));
        }

        var attempted = hosts.Length * clientsPerProcess * writesPerClient;
        TestContext.Out.WriteLine($"two processes: {attempted} writes attempted, {acknowledged.Count} answered 200, {errors.Count} errors, {lost} lost");
        Assert.Multiple(() =>
        {
            Assert.That(errors, Is.Empty, string.Join('\n', errors.Take(5)));
            Assert.That(acknowledged, Has.Count.EqualTo(attempted));
            Assert.That(lost, Is.Zero);
        });
    }

    [Test]
    public async Task OneTwoThreeProcesses_CreatingSessionsFlatOut_TheWalStaysBounded_AndNoWriteFails()
    {
        // Each process checkpoints the WAL; SQLite only starts the WAL over after a checkpoint that copied every frame
        // while no reader used an older snapshot, which pausing one process's writer cannot bring about when others
        // keep appending.
        var db = Folder.File("wal.db");
        var keys = Folder.File("keys");
        await using var a = await ChildHost.StartAsync(db, keys);
        var others = await Task.WhenAll(ChildHost.StartAsync(db, keys), ChildHost.StartAsync(db, keys));
        await using var b = others[0];
        await using var c = others[1];

        using var client = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
        var errors = new List<string>();
        long created = 0, maxWal = 0;
        var walSamples = new List<(string Phase, long Created, long Max)>();
        foreach (var (phase, hosts) in new[] { ("1 process", new[] { a }), ("2 processes", new[] { a, b }), ("3 processes", new[] { a, b, c }) })
        {
            // Each process creates sessions of 2 KiB as fast as its store takes them, for 8 s.
            var loads = hosts.Select(host => client.GetStringAsync(new Uri(host.BaseAddress, "/load?seconds=8&size=2048&writers=16"))).ToList();
            long phaseMax = 0;
            while (!loads.TrueForAll(l => l.IsCompleted))
            {
                phaseMax = Math.Max(phaseMax, new FileInfo(db + "-wal") is { Exists: true } f ? f.Length : 0);
                await Task.Delay(20);
            }

            long phaseCreated = 0;
            foreach (var answer in await Task.WhenAll(loads))
            {
                // "<created> <failed> <first error>"
                var parts = answer.Split(' ', 3);
                phaseCreated += long.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture);
                if (parts[1] != "0")
                {
                    errors.Add($"{phase}: {parts[1]} writes failed, first: {parts[2]}");
                }
            }

            created += phaseCreated;
            walSamples.Add((phase, phaseCreated, phaseMax));
            maxWal = Math.Max(maxWal, phaseMax);
        }

        if (errors.Count > 0)
        {
            foreach (var line in new[] { a, b, c }.SelectMany(h => h.Output).Take(60))
            {
                TestContext.Out.WriteLine(line);
            }
        }

        const long bound = 3 * Storage.Sqlite.SqliteSessionStore.WalSizeLimitBytes;
        TestContext.Out.WriteLine(
            $"sessions of 2 KiB created and largest WAL seen: {string.Join(", ", walSamples.Select(s => $"{s.Phase}: {s.Created} sessions, WAL {s.Max / 1024 / 1024} MiB"))} " +
            $"(bound {bound / 1024 / 1024} MiB); {errors.Count} errors");
        Assert.Multiple(() =>
        {
            Assert.That(errors, Is.Empty, string.Join('\n', errors.Take(5)));
            Assert.That(created, Is.GreaterThan(10_000), "enough writes to tell");
            Assert.That(maxWal, Is.LessThanOrEqualTo(bound), "the WAL started over although several processes write");
        });
    }

    [Test]
    public async Task ProcessKilledMidWrite_LosesNoAnsweredWrite_AndTheFileIsIntact()
    {
        var db = Folder.File("kill.db");
        var keys = Folder.File("keys");
        var acknowledged = new ConcurrentBag<(string Cookie, string Key)>();
        var attempted = 0;
        using var client = new HttpClient(new HttpClientHandler { UseCookies = false }) { Timeout = TimeSpan.FromSeconds(30) };

        await using (var host = await ChildHost.StartAsync(db, keys))
        {
            var cookies = new List<string>();
            for (var i = 0; i < 16; i++)
            {
                cookies.Add(await NewSessionAsync(client, host.BaseAddress));
            }

            using var stop = new CancellationTokenSource();
            var writers = cookies.Select(async (cookie, c) =>
            {
                for (var n = 0; !stop.IsCancellationRequested && n < 100_000; n++)
                {
                    Interlocked.Increment(ref attempted);
                    try
                    {
                        using var response = await SendAsync(client, new Uri(host.BaseAddress, $"/set?key=w{n}&value={n}"), cookie);
                        if (response.StatusCode == HttpStatusCode.OK)
                        {
                            acknowledged.Add((cookie, $"w{n}"));
                        }
                    }
                    catch (HttpRequestException)
                    {
                        return; // the process is gone
                    }
                }
            }).ToList();

            // Kill once a good number of writes were answered, while the writers are still going.
            while (acknowledged.Count < 1500)
            {
                await Task.WhenAny(Task.WhenAll(writers), Task.Delay(20));
            }

            await host.KillAsync();
            stop.Cancel();
            await Task.WhenAll(writers);
        }

        string integrity;
        using (var connection = new SqliteConnection($"Data Source={db};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA integrity_check;";
            integrity = (string)command.ExecuteScalar()!;
        }

        await using var restarted = await ChildHost.StartAsync(db, keys);
        var lost = 0;
        foreach (var group in acknowledged.GroupBy(w => w.Cookie))
        {
            using var response = await SendAsync(client, new Uri(restarted.BaseAddress, "/keys"), group.Key);
            var stored = (await response.Content.ReadAsStringAsync()).Split(',').ToHashSet(StringComparer.Ordinal);
            lost += group.Count(w => !stored.Contains(w.Key));
        }

        TestContext.Out.WriteLine($"SIGKILL: {attempted} writes attempted, {acknowledged.Count} answered 200 before the kill, {lost} of those lost; integrity_check: {integrity}");
        Assert.Multiple(() =>
        {
            Assert.That(integrity, Is.EqualTo("ok"));
            Assert.That(lost, Is.Zero);
            Assert.That(acknowledged.Count, Is.GreaterThanOrEqualTo(1500));
        });
    }

    [Test]
    public async Task TwoProcesses_OnOneFile_AWriteOrARevokeInOne_IsSeenByTheOther_AtItsNextRequest()
    {
        // Each process keeps the rows it loaded in memory (RowCacheSize): the other process's commits must reach it anyway.
        var db = Folder.File("cache.db");
        var keys = Folder.File("keys");
        await using var a = await ChildHost.StartAsync(db, keys);
        await using var b = await ChildHost.StartAsync(db, keys);
        using var client = new HttpClient(new HttpClientHandler { UseCookies = false }) { Timeout = TimeSpan.FromMinutes(1) };
        var cookie = await NewSessionAsync(client, a.BaseAddress);
        async Task<string> GetAsync(ChildHost host, string path)
        {
            using var response = await SendAsync(client, new Uri(host.BaseAddress, path), cookie);
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), path);
            return await response.Content.ReadAsStringAsync();
        }

        var id = await GetAsync(a, "/id");
        var readTwiceInA = (await GetAsync(a, "/get?key=created"), await GetAsync(a, "/get?key=created"));
        var writtenInB = await GetAsync(b, "/set?key=created&value=2");
        var readInAAfterB = await GetAsync(a, "/get?key=created");
        var revokedInB = await GetAsync(b, $"/revoke?id={id}");
        var readInAAfterRevoke = await GetAsync(a, "/get?key=created");

        Assert.Multiple(() =>
        {
            Assert.That(readTwiceInA, Is.EqualTo(("1", "1")));
            Assert.That(writtenInB, Is.EqualTo("ok"));
            Assert.That(readInAAfterB, Is.EqualTo("2"), "B's write, read in A");
            Assert.That(revokedInB, Is.EqualTo("revoked"));
            Assert.That(readInAAfterRevoke, Is.EqualTo("(none)"), "revoked in B: a new empty session in A");
        });
    }

    // The app's startup checked the file's permissions by opening and closing it while its pool held the migration's
    // connection open. On Linux, closing any descriptor of a file drops all of the process's POSIX locks on it, SQLite's
    // included. Any other process closing its last connection on the file (an operator's sqlite3 shell, a script) then
    // took itself for the file's last user: it checkpointed and deleted the WAL and -shm under the running app, whose
    // later commits went to a deleted WAL that no other process could read and that a crash would lose. The sqlite3
    // shell shows it (the SQLite bundled with Microsoft.Data.Sqlite leaves the WAL in place on close).
    [Test]
    public async Task ASqliteShellClosingItsConnection_LeavesTheRunningAppsWal_AndSeesItsLaterCommits()
    {
        var db = Folder.File("app.db");
        await using var app = await ChildHost.StartAsync(db, Folder.File("keys"));
        using var client = new HttpClient(new HttpClientHandler { UseCookies = false }) { Timeout = TimeSpan.FromMinutes(1) };
        await NewSessionAsync(client, app.BaseAddress);

        var before = await CountWithTheSqliteShellAsync(db);
        var walKept = File.Exists(db + "-wal") && File.Exists(db + "-shm");
        await NewSessionAsync(client, app.BaseAddress);
        var after = await CountWithTheSqliteShellAsync(db);

        Assert.Multiple(() =>
        {
            Assert.That(before, Is.EqualTo(1));
            Assert.That(walKept, Is.True, "the running app's WAL and -shm are still there after another process closed its connection");
            Assert.That(after, Is.EqualTo(2), "the app's commit after that is seen by another process");
        });
    }

    // The sqlite3 shell (Debian's sqlite3 package; build/test installs it) in a process of its own: one connection, one
    // query, closed.
    private static async Task<long> CountWithTheSqliteShellAsync(string db)
    {
        var start = new System.Diagnostics.ProcessStartInfo("sqlite3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(db);
        start.ArgumentList.Add("SELECT count(*) FROM sessions;");
        System.Diagnostics.Process process;
        try
        {
            process = System.Diagnostics.Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new AssertionException("this test needs the sqlite3 shell (apt-get install sqlite3; build/test installs it): " + ex.Message);
        }

        using (process)
        {
            var output = await process.StandardOutput.ReadToEndAsync();
            var error = await process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            Assert.That(process.ExitCode, Is.Zero, error);
            return long.Parse(output.Trim(), System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    private static async Task<string> NewSessionAsync(HttpClient client, Uri baseAddress)
    {
        using var response = await client.GetAsync(new Uri(baseAddress, "/set?key=created&value=1"));
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        return response.Headers.GetValues("Set-Cookie").Single().Split(';')[0];
    }

    private static Task<HttpResponseMessage> SendAsync(HttpClient client, Uri uri, string cookie)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, uri);
        request.Headers.TryAddWithoutValidation("Cookie", cookie);
        return client.SendAsync(request);
    }
}
