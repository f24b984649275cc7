using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// A store failure is logged and surfaced as a 5xx, never a silently empty session or a success for a lost write.
/// Over each store: the faults are injected by a <see cref="FaultyStore"/> around the real one.
/// </summary>
[LaneFixture(StoreKind.Sqlite)]
[LaneFixture(StoreKind.PostgreSql)]
public sealed class StoreFaultTests(StoreKind store)
{
    private TempFolder _folder = null!;
    private FaultyStore _store = null!;
    private SessionTestHost _host = null!;

    [SetUp]
    public async Task SetUp()
    {
        _folder = new TempFolder();
        _host = await SessionTestHost.StartAsync(
            _folder.Path,
            configure: o => o.IOTimeout = TimeSpan.FromMilliseconds(500),
            services: s => s.UseStore(sp => _store = new FaultyStore(SessionTestHost.RealStore(sp))),
            endpoints: app => app.MapGet("/stream", async (HttpContext c) =>
            {
                c.Session.SetString("streamed", "yes");
                await c.Response.WriteAsync("body");
            }),
            store: store);
    }

    [TearDown]
    public async Task TearDown()
    {
        await _host.DisposeAsync();
        _folder.Dispose();
    }

    [Test]
    public async Task LoadFailure_Answers503_AndLogsIt_ThenRecovers()
    {
        var browser = _host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");

        _store.OnLoad = () => new SqliteException("database disk image is malformed", 11);
        using var failed = await browser.GetAsync("/get?key=a");
        _store.OnLoad = null;

        Assert.Multiple(async () =>
        {
            Assert.That(failed.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
            var log = _host.Logs.GetSnapshot().Single(r => r.Id.Name == "LoadFailed");
            Assert.That(log.Level, Is.EqualTo(LogLevel.Error));
            Assert.That(await browser.GetTextAsync("/get?key=a"), Is.EqualTo("1"), "the next request after the fault succeeds");
        });
    }

    [Test]
    public async Task LoadThatHangs_IsCutOffByIOTimeout_With503()
    {
        var browser = _host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");

        _store.BeforeLoad = token => Task.Delay(Timeout.Infinite, token);
        using var failed = await browser.GetAsync("/get?key=a");
        _store.BeforeLoad = null;

        Assert.Multiple(async () =>
        {
            Assert.That(failed.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
            Assert.That(_host.Logs.GetSnapshot().Single(r => r.Id.Name == "LoadFailed").Exception, Is.InstanceOf<OperationCanceledException>());
            Assert.That(await browser.GetTextAsync("/get?key=a"), Is.EqualTo("1"));
        });
    }

    [Test]
    public async Task TouchThatHangs_IsCutOffByIOTimeout_AndTheReadStillAnswers200()
    {
        var browser = _host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");
        _host.Time.Advance(TimeSpan.FromMinutes(2)); // past TouchInterval: the next read records its access

        _store.BeforeTouch = token => Task.Delay(Timeout.Infinite, token);
        using var read = await browser.GetAsync("/get?key=a");
        _store.BeforeTouch = null;

        Assert.Multiple(async () =>
        {
            Assert.That(read.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(await read.Content.ReadAsStringAsync(), Is.EqualTo("1"));
            Assert.That(_host.Logs.GetSnapshot().Single(r => r.Id.Name == "TouchFailed").Exception, Is.InstanceOf<OperationCanceledException>());
        });
    }

    [Test]
    public async Task CommitFailure_BeforeTheResponseStarted_Answers500_AndLogsIt()
    {
        var browser = _host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");

        _store.OnUpdate = () => new SqliteException("database or disk is full", 13);
        using var failed = await browser.GetAsync("/set?key=a&value=2");
        _store.OnUpdate = null;

        Assert.Multiple(async () =>
        {
            Assert.That((int)failed.StatusCode, Is.EqualTo(500));
            Assert.That(_host.Logs.GetSnapshot().Count(r => r.Id.Name == "CommitFailed"), Is.EqualTo(1));
            Assert.That(await browser.GetTextAsync("/get?key=a"), Is.EqualTo("1"), "the failed write is not reported as stored");
            Assert.That(await browser.GetTextAsync("/set?key=a&value=3"), Is.EqualTo("ok"), "writes work again after the fault");
            Assert.That(await browser.GetTextAsync("/get?key=a"), Is.EqualTo("3"));
        });
    }

    [Test]
    public async Task CommitFailure_WhenTheAppWritesTheBody_Answers5xxInsteadOfTheBody()
    {
        var browser = _host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");

        _store.OnUpdate = () => new SqliteException("database or disk is full", 13);
        using var failed = await browser.GetAsync("/stream");
        _store.OnUpdate = null;

        Assert.Multiple(async () =>
        {
            Assert.That((int)failed.StatusCode, Is.GreaterThanOrEqualTo(500));
            Assert.That(await failed.Content.ReadAsStringAsync(), Does.Not.Contain("body"));
            Assert.That(await browser.GetTextAsync("/get?key=streamed"), Is.EqualTo("(none)"));
        });
    }

    [Test]
    public async Task CreateFailure_Answers500_AndSetsNoCookie()
    {
        var client = _host.CreateRawClient();

        _store.OnCreate = () => new SqliteException("attempt to write a readonly database", 8);
        using var failed = await client.GetAsync("/set?key=a&value=1");

        Assert.Multiple(async () =>
        {
            Assert.That((int)failed.StatusCode, Is.EqualTo(500));
            Assert.That(failed.SetCookies(_host.CookieName), Is.Empty);
            Assert.That(await _host.CountRowsAsync(), Is.Zero);
        });
    }

    [Test]
    public async Task CorruptRowData_IsLogged_TreatedAsEmpty_AndReplacedOnTheNextWrite()
    {
        var browser = _host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");
        await _host.ExecuteScalarAsync("UPDATE sessions SET data = @data", ("data", new byte[] { 0x09, 0xFF, 0xFF }));

        var read = await browser.GetTextAsync("/get?key=a");
        await browser.GetTextAsync("/set?key=b&value=2");

        Assert.Multiple(async () =>
        {
            Assert.That(read, Is.EqualTo("(none)"));
            var log = _host.Logs.GetSnapshot().First(r => r.Id.Name == "CorruptSessionData");
            Assert.That(log.Message, Does.Contain("unknown format version 9"));
            Assert.That(await browser.GetTextAsync("/keys"), Is.EqualTo("b"));
            Assert.That(await _host.CountRowsAsync(), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task RowOfAnUnknownNewerFormat_IsReadAsEmpty_ButKeptByReadOnlyRequests_UntilTheAppWrites()
    {
        // A rolling upgrade: a newer node wrote format 9; this node must not wipe it just by reading it.
        var browser = _host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");
        byte[] newer = [9, 1, 2, 3, 4, 5];
        await _host.ExecuteScalarAsync("UPDATE sessions SET data = @data", ("data", newer));

        var read = await browser.GetTextAsync("/get?key=a");
        var afterRead = await StoredDataAsync();
        _host.Time.Advance(TimeSpan.FromMinutes(5));   // a touch is due: it may record the access, not replace the data
        await browser.GetTextAsync("/nothing");
        var afterTouch = await StoredDataAsync();
        await browser.GetTextAsync("/regenerate");
        var afterRenew = await StoredDataAsync();
        await browser.GetTextAsync("/set?key=b&value=2");

        Assert.Multiple(async () =>
        {
            Assert.That(read, Is.EqualTo("(none)"), "read as empty");
            Assert.That(afterRead, Is.EqualTo(newer), "a read-only request leaves the row's data alone");
            Assert.That(afterTouch, Is.EqualTo(newer), "so does a touch");
            Assert.That(afterRenew, Is.EqualTo(newer), "and a new ID");
            Assert.That(await browser.GetTextAsync("/keys"), Is.EqualTo("b"), "a write by the app replaces it");
            Assert.That(await _host.CountRowsAsync(), Is.EqualTo(1));
        });
    }

    private async Task<byte[]> StoredDataAsync() => (byte[])(await _host.ExecuteScalarAsync("SELECT data FROM sessions"))!;
}
