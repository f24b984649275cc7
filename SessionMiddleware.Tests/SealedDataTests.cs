using System.Data.Common;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Http;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using SessionMiddleware.Session;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// <see cref="ServerSideSessionOptions.ProtectData"/> over each store: what a copy of the database holds (the SQLite
/// file and its WAL read raw, PostgreSQL's data column read raw), turning it on and off over existing rows, a sealed row
/// the key ring cannot open, the merge of a concurrent commit and a sign-in kept by the ticket store.
/// </summary>
[LaneFixture(StoreKind.Sqlite)]
[LaneFixture(StoreKind.PostgreSql)]
public sealed class SealedDataTests(StoreKind store) : TempFolderTest
{
    private const string SecretKey = "secret-key-name-q7";
    private const string SecretValue = "secret-value-z9x";
    private const string OtherSecretValue = "another-secret-value-k4";

    // One database for every host of a test (the app restarted with another setting), and one key ring.
    private string? _postgres;

    private string AppFolder => Path.Combine(Folder.Path, "app");

    [SetUp]
    public async Task CreateDatabase()
    {
        Directory.CreateDirectory(AppFolder);
        _postgres = store == StoreKind.PostgreSql ? await (await PostgresServer.SharedAsync()).CreateDatabaseAsync() : null;
    }

    [TearDown]
    public async Task DropDatabase()
    {
        if (_postgres is not null)
        {
            await (await PostgresServer.SharedAsync()).DropDatabaseAsync(_postgres);
        }
    }

    private Task<SessionTestHost> StartAsync(bool protect, Action<WebApplication>? endpoints = null) =>
        SessionTestHost.StartAsync(
            AppFolder,
            o => o.ProtectData = protect,
            services: s =>
            {
                if (_postgres is not null)
                {
                    s.UsePostgreSql(_postgres);
                }
            },
            endpoints: endpoints,
            keysFolder: Path.Combine(Folder.Path, "keys"));

    [TestCase(true)]
    [TestCase(false)]
    public async Task WhatTheDatabaseHolds_NoValueNorKeyName_WhenProtectDataIsOn_AndUserAndTimesStayReadable(bool protect)
    {
        await using var host = await StartAsync(protect);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync($"/set?key={SecretKey}&value={SecretValue}");        // insert
        await browser.GetTextAsync($"/set?key={SecretKey}2&value={OtherSecretValue}");  // update
        var id = await browser.GetTextAsync("/bind?user=erin-user");                     // renewal
        var readBack = await browser.GetTextAsync($"/get?key={SecretKey}");

        var stored = await StoredBytesAsync(host);
        var rows = await DataColumnAsync();
        var listed = await host.Services.GetRequiredService<ISessionManager>().ListForUserAsync("erin-user");

        Assert.Multiple(() =>
        {
            Assert.That(readBack, Is.EqualTo(SecretValue));
            foreach (var secret in new[] { SecretKey, SecretValue, OtherSecretValue })
            {
                Assert.That(Contains(stored, secret), Is.EqualTo(!protect), $"'{secret}' in what the database holds");
            }

            Assert.That(rows.Select(r => r[0]), Is.All.EqualTo(protect ? SessionDataProtector.SealedFormat : SessionSerializer.FormatVersion));
            Assert.That(listed.Select(s => s.Id), Is.EqualTo(new[] { id }), "user ID and times stay readable: listing works");
        });
    }

    [Test]
    public async Task TurningProtectDataOnThenOff_ReadsEveryRow_SealsItOnItsNextWrite_AndWritesItClearAgain()
    {
        var cookies = new CookieContainer();   // one browser across the restarts (cookies are per host name, not port)

        byte firstClear, afterReadOn, afterWriteOn, afterReadOff, afterWriteOff;
        string readOn, readOff, readLast;
        await using (var off = await StartAsync(protect: false))
        {
            await off.CreateBrowser(cookies).GetTextAsync("/set?key=a&value=1");
            firstClear = await FirstByteAsync();
        }

        await using (var on = await StartAsync(protect: true))
        {
            var browser = on.CreateBrowser(cookies);
            readOn = await browser.GetTextAsync("/get?key=a");
            afterReadOn = await FirstByteAsync();
            await browser.GetTextAsync("/set?key=b&value=2");
            afterWriteOn = await FirstByteAsync();
        }

        await using (var offAgain = await StartAsync(protect: false))
        {
            var browser = offAgain.CreateBrowser(cookies);
            readOff = await browser.GetTextAsync("/get?key=b");
            afterReadOff = await FirstByteAsync();
            await browser.GetTextAsync("/set?key=c&value=3");
            afterWriteOff = await FirstByteAsync();
            readLast = await browser.GetTextAsync("/keys");
        }

        Assert.Multiple(() =>
        {
            Assert.That(firstClear, Is.EqualTo(SessionSerializer.FormatVersion));
            Assert.That(readOn, Is.EqualTo("1"), "a clear row reads with ProtectData on");
            Assert.That(afterReadOn, Is.EqualTo(SessionSerializer.FormatVersion), "a read does not rewrite the row");
            Assert.That(afterWriteOn, Is.EqualTo(SessionDataProtector.SealedFormat), "sealed on its next write");
            Assert.That(readOff, Is.EqualTo("2"), "a sealed row reads with ProtectData off");
            Assert.That(afterReadOff, Is.EqualTo(SessionDataProtector.SealedFormat));
            Assert.That(afterWriteOff, Is.EqualTo(SessionSerializer.FormatVersion), "written clear again");
            Assert.That(readLast, Is.EqualTo("a,b,c"));
        });
    }

    [Test]
    public async Task SealedRow_TheKeyRingCannotOpen_IsAnEmptySession_Logged_AndNotOverwrittenByARead()
    {
        await using var host = await StartAsync(protect: true);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");

        // The row as a node with another key ring (or a lost one) sealed it.
        var entries = new Dictionary<string, byte[]>(StringComparer.Ordinal) { ["a"] = "9"u8.ToArray() };
        var foreign = new SessionDataProtector(new EphemeralDataProtectionProvider(), seals: true)
            .Seal(SessionSerializer.Serialize(entries, SessionSerializer.HeaderSize(1) + SessionSerializer.EntrySize("a", 1)));
        await ExecuteAsync("UPDATE sessions SET data = @data", ("@data", foreign));

        using var read = await browser.GetAsync("/get?key=a");
        var afterRead = (await DataColumnAsync()).Single();
        await browser.GetTextAsync("/set?key=b&value=2");
        var keysAfterWrite = await browser.GetTextAsync("/keys");

        Assert.Multiple(async () =>
        {
            Assert.That(read.StatusCode, Is.EqualTo(HttpStatusCode.OK), "never a 500");
            Assert.That(await read.Content.ReadAsStringAsync(), Is.EqualTo("(none)"));
            var log = host.Logs.GetSnapshot().First(r => r.Id.Name == "CorruptSessionData");
            Assert.That(log.Message, Does.Contain("key ring"));
            Assert.That(afterRead, Is.EqualTo(foreign), "a read-only request leaves the sealed row as it was");
            Assert.That(keysAfterWrite, Is.EqualTo("b"), "the app's write replaces it");
        });
    }

    [Test]
    public async Task ConcurrentCommit_OfASealedRow_IsMergedWithThisRequestsChanges()
    {
        await using var host = await StartAsync(protect: true, endpoints: app =>
            app.MapGet("/race", async (HttpContext c) =>
            {
                var session = (ServerSideSession)c.Session;
                session.SetString("mine", "m");

                // Meanwhile another server commits to the same session, sealed as this one seals.
                var theirs = new Dictionary<string, byte[]>(StringComparer.Ordinal) { ["a"] = "1"u8.ToArray(), ["theirs"] = "t"u8.ToArray() };
                var size = SessionSerializer.HeaderSize(2) + SessionSerializer.EntrySize("a", 1) + SessionSerializer.EntrySize("theirs", 1);
                var sealedBytes = c.RequestServices.GetRequiredService<SessionDataProtector>().Seal(SessionSerializer.Serialize(theirs, size));
                var result = await c.RequestServices.GetRequiredService<IServerSideSessionStore>().UpdateAsync(session.Key!, sealedBytes, session.Version);
                return result.Status.ToString();
            }));
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");

        var race = await browser.GetTextAsync("/race");
        var keys = await browser.GetTextAsync("/keys");

        Assert.Multiple(async () =>
        {
            Assert.That(race, Is.EqualTo(nameof(SessionUpdateStatus.Committed)));
            Assert.That(keys, Is.EqualTo("a,mine,theirs"), "the other commit's keys are kept");
            Assert.That((await DataColumnAsync()).Single()[0], Is.EqualTo(SessionDataProtector.SealedFormat));
        });
    }

    [Test]
    public async Task SignIn_WithTheTicketStore_WorksSealed_AndTheRowHoldsNoClaim()
    {
        await using var host = await AuthTestApp.StartAsync(
            AppFolder,
            configure: o => o.ProtectData = true,
            services: s =>
            {
                if (_postgres is not null)
                {
                    s.UsePostgreSql(_postgres);
                }
            },
            keysFolder: Path.Combine(Folder.Path, "keys"));
        var browser = host.CreateBrowser();

        await browser.GetTextAsync("/signin?user=erin&remember=true");
        var whoami = await browser.GetTextAsync("/whoami");
        using var admin = await browser.GetAsync("/admin-only");
        var rows = await DataColumnAsync();
        var stored = await StoredBytesAsync(host);
        await browser.GetTextAsync("/signout");
        var afterSignOut = await browser.GetTextAsync("/whoami");

        Assert.Multiple(() =>
        {
            Assert.That(whoami, Is.EqualTo("erin"));
            Assert.That(admin.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(rows.Single()[0], Is.EqualTo(SessionDataProtector.SealedFormat), "the row holding the ticket is sealed");
            Assert.That(Contains(stored, AuthTestApp.SecretEmail), Is.False);
            Assert.That(afterSignOut, Is.EqualTo("anonymous"));
        });
    }

    /// <summary>
    /// What a copy of the database holds: on SQLite the database file and its WAL, read raw while the app runs; on
    /// PostgreSQL the data column of every row, read raw.
    /// </summary>
    private async Task<byte[]> StoredBytesAsync(SessionTestHost host)
    {
        if (_postgres is not null)
        {
            return [.. (await DataColumnAsync()).SelectMany(d => d)];
        }

        var all = new List<byte>();
        foreach (var path in new[] { host.DatabasePath, host.DatabasePath + "-wal" })
        {
            if (File.Exists(path))
            {
                await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var copy = new MemoryStream();
                await file.CopyToAsync(copy);
                all.AddRange(copy.ToArray());
            }
        }

        Assert.That(all, Is.Not.Empty);
        return [.. all];
    }

    private async Task<List<byte[]>> DataColumnAsync()
    {
        await using var connection = await OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT data FROM sessions";
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<byte[]>();
        while (await reader.ReadAsync())
        {
            rows.Add((byte[])reader.GetValue(0));
        }

        return rows;
    }

    private async Task<byte> FirstByteAsync() => (await DataColumnAsync()).Single()[0];

    private async Task ExecuteAsync(string sql, (string Name, object Value) parameter)
    {
        await using var connection = await OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        var p = command.CreateParameter();
        p.ParameterName = parameter.Name;
        p.Value = parameter.Value;
        command.Parameters.Add(p);
        await command.ExecuteNonQueryAsync();
    }

    private async Task<DbConnection> OpenAsync()
    {
        DbConnection connection = _postgres is null
            ? new SqliteConnection($"Data Source={Path.Combine(AppFolder, "sessions.db")};Pooling=False")
            : new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_postgres) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    private static bool Contains(byte[] haystack, string needle) => haystack.AsSpan().IndexOf(Encoding.UTF8.GetBytes(needle)) >= 0;
}
