using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>Options: defaults, binding from configuration, validation at startup, wiring errors.</summary>
public sealed class OptionsTests : TempFolderTest
{
    [Test]
    public void Defaults_AreTheDocumentedOnes()
    {
        var o = new ServerSideSessionOptions();

        Assert.Multiple(() =>
        {
            Assert.That(o.ConnectionString, Is.EqualTo("Data Source=sessions.db"));
            Assert.That(o.TableName, Is.EqualTo("sessions"));
            Assert.That(o.IdleTimeout, Is.EqualTo(TimeSpan.FromMinutes(20)));
            Assert.That(o.AbsoluteTimeout, Is.Null);
            Assert.That(o.CleanupInterval, Is.EqualTo(TimeSpan.FromSeconds(60)));
            Assert.That(o.TouchInterval, Is.EqualTo(TimeSpan.FromSeconds(60)));
            Assert.That(o.MaxSessionBytes, Is.EqualTo(256 * 1024));
            Assert.That(o.RowCacheSize, Is.EqualTo(10_000));
            Assert.That(o.CleanupBatchSize, Is.EqualTo(100));
            Assert.That(o.BusyTimeout, Is.EqualTo(TimeSpan.FromSeconds(5)));
            Assert.That(o.IOTimeout, Is.EqualTo(TimeSpan.FromSeconds(10)));
            Assert.That(o.RecordDeviceInfo, Is.True);
            Assert.That(o.Cookie.Name, Is.EqualTo(".ServerSession"));
            Assert.That(o.Cookie.HttpOnly, Is.True);
            Assert.That(o.Cookie.SameSite, Is.EqualTo(SameSiteMode.Lax));
            Assert.That(o.Cookie.Path, Is.EqualTo("/"));
            Assert.That(o.Cookie.SecurePolicy, Is.EqualTo(CookieSecurePolicy.SameAsRequest));
            Assert.That(o.Cookie.IsEssential, Is.True);
        });
    }

    [Test]
    public void AddServerSideSessions_FromConfiguration_BindsTheSection()
    {
        const string json = """
            {
              "ServerSideSessions": {
                "ConnectionString": "Data Source=app.db",
                "TableName": "web_sessions",
                "IdleTimeout": "00:45:00",
                "AbsoluteTimeout": "08:00:00",
                "CleanupInterval": "00:02:00",
                "TouchInterval": "00:00:30",
                "MaxSessionBytes": 4096,
                "Cookie": { "Name": "__Host-sid", "SecurePolicy": "Always", "SameSite": "Strict" }
              }
            }
            """;
        var configuration = new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json))).Build();
        var services = new ServiceCollection().AddServerSideSessions(configuration.GetSection("ServerSideSessions")).Services.BuildServiceProvider();

        var o = services.GetRequiredService<IOptions<ServerSideSessionOptions>>().Value;

        Assert.Multiple(() =>
        {
            Assert.That(o.ConnectionString, Is.EqualTo("Data Source=app.db"));
            Assert.That(o.TableName, Is.EqualTo("web_sessions"));
            Assert.That(o.IdleTimeout, Is.EqualTo(TimeSpan.FromMinutes(45)));
            Assert.That(o.AbsoluteTimeout, Is.EqualTo(TimeSpan.FromHours(8)));
            Assert.That(o.CleanupInterval, Is.EqualTo(TimeSpan.FromMinutes(2)));
            Assert.That(o.TouchInterval, Is.EqualTo(TimeSpan.FromSeconds(30)));
            Assert.That(o.MaxSessionBytes, Is.EqualTo(4096));
            Assert.That(o.Cookie.Name, Is.EqualTo("__Host-sid"));
            Assert.That(o.Cookie.SecurePolicy, Is.EqualTo(CookieSecurePolicy.Always));
            Assert.That(o.Cookie.SameSite, Is.EqualTo(SameSiteMode.Strict));
            Assert.That(o.Cookie.HttpOnly, Is.True, "unbound cookie settings keep their defaults");
        });
    }

    private static IEnumerable<TestCaseData> InvalidOptions()
    {
        yield return Case(o => o.TableName = "sessions; DROP TABLE users", "TableName");
        yield return Case(o => o.TableName = "1sessions", "TableName");
        yield return Case(o => o.TableName = "", "TableName");
        yield return Case(o => o.TableName = new string('a', 64), "TableName");
        yield return Case(o => o.IdleTimeout = TimeSpan.FromMinutes(-1), "IdleTimeout");
        yield return Case(o => o.IdleTimeout = TimeSpan.Zero, "IdleTimeout");
        yield return Case(o => o.AbsoluteTimeout = TimeSpan.FromSeconds(-5), "AbsoluteTimeout");
        yield return Case(o => o.CleanupInterval = TimeSpan.Zero, "CleanupInterval");
        yield return Case(o => o.CleanupBatchSize = 0, "CleanupBatchSize");
        yield return Case(o => o.TouchInterval = TimeSpan.FromMinutes(20), "TouchInterval");
        yield return Case(o => o.TouchInterval = TimeSpan.FromSeconds(-1), "TouchInterval");
        yield return Case(o => o.MaxSessionBytes = 0, "MaxSessionBytes");
        yield return Case(o => o.RowCacheSize = -1, "RowCacheSize");
        yield return Case(o => o.BusyTimeout = TimeSpan.Zero, "BusyTimeout");
        yield return Case(o => o.ConnectionString = "", "ConnectionString");
        yield return Case(o => o.ConnectionString = "Flavour=Strawberry", "ConnectionString");
        yield return Case(o => o.Cookie.Expiration = TimeSpan.FromDays(1), "Cookie.Expiration");
        yield return Case(o => o.Cookie.MaxAge = TimeSpan.Zero, "Cookie.MaxAge");
        yield return Case(o => o.ConnectionString = "Data Source=:memory:", "ConnectionString");
        yield return Case(o => o.IOTimeout = TimeSpan.Zero, "IOTimeout");
        yield return Case(o => o.IOTimeout = TimeSpan.FromDays(50), "IOTimeout");
        yield return Case(o => o.IOTimeout = TimeSpan.MaxValue, "IOTimeout");
        yield return Case(o => o.IdleTimeout = TimeSpan.FromDays(366), "IdleTimeout");
        yield return Case(o => o.AbsoluteTimeout = TimeSpan.FromDays(400), "AbsoluteTimeout");
        yield return Case(o => o.NewSessionLimit = -1, "NewSessionLimit");
        yield return Case(o => o.NewSessionLimitWindow = TimeSpan.Zero, "NewSessionLimitWindow");
        yield return Case(o => o.NewSessionLimitWindow = TimeSpan.FromDays(2), "NewSessionLimitWindow");
        yield return Case(o => o.MaxSessionsPerUser = -1, "MaxSessionsPerUser");
        yield return Case(o => o.WhenMaxSessionsReached = (MaxSessionsBehavior)7, "WhenMaxSessionsReached");
        yield return Case(o => o.HeaderName = "", "HeaderName");
        yield return Case(o => o.HeaderAlsoSetsCookie = true, "HeaderAlsoSetsCookie");
        yield return Case(o => o.HeaderName = "X Session", "HeaderName");
        yield return Case(o => o.HeaderName = "X-Session:", "HeaderName");
        yield return Case(o => o.HeaderName = "Cookie", "HeaderName");
        yield return Case(o => o.HeaderName = "set-cookie", "HeaderName");
        yield return Case(o => o.HeaderName = "Authorization", "HeaderName");
        yield return Case(o => o.HeaderName = "Sec-Session", "HeaderName");
        yield return Case(o =>
        {
            o.Cookie.Name = "__Host-sid";
            o.Cookie.SecurePolicy = CookieSecurePolicy.None;
        }, "Cookie.SecurePolicy");
        yield return Case(o =>
        {
            o.Cookie.Name = "__Host-sid";
            o.Cookie.Domain = "example.com";
        }, "Cookie");

        static TestCaseData Case(Action<ServerSideSessionOptions> configure, string option) =>
            new TestCaseData(configure, option).SetName($"Startup_WithInvalid{option.Replace(".", "", StringComparison.Ordinal)}_FailsNamingIt({option})");
    }

    [TestCaseSource(nameof(InvalidOptions))]
    public void Startup_WithAnInvalidOption_FailsNamingIt(Action<ServerSideSessionOptions> configure, string option)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddServerSideSessions(o =>
        {
            o.ConnectionString = $"Data Source={Folder.File("s.db")}";
            configure(o);
        });
        using var app = builder.Build();

        var ex = Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync());

        Assert.That(ex!.Message, Does.Contain("ServerSideSessionOptions." + option));
    }

    [Test]
    public void Startup_WithATimeoutOverAYear_FailsShowingTheTimeSpanForm()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ServerSideSessions:ConnectionString"] = $"Data Source={Folder.File("s.db")}",
            ["ServerSideSessions:IdleTimeout"] = "20",
            ["ServerSideSessions:AbsoluteTimeout"] = "500",
        });
        builder.Services.AddServerSideSessions(builder.Configuration.GetSection("ServerSideSessions"));
        using var app = builder.Build();

        var ex = Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync());

        Assert.That(ex!.Message, Does.Contain("ServerSideSessionOptions.AbsoluteTimeout is 500.00:00:00").And.Contain("\"00:20:00\"").And.Not.Contain("IdleTimeout"),
            "20 days is allowed; 500 days is flagged with the hh:mm:ss form");
    }

    [Test]
    public async Task IOTimeout_AtTheLargestAllowedValue_StoresAndLoads()
    {
        // The timer behind IOTimeout takes at most 2^32 - 2 ms (about 49.7 days): the largest value validation lets through must work.
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o => o.IOTimeout = TimeSpan.FromMilliseconds(uint.MaxValue - 1));
        var browser = host.CreateBrowser();

        await browser.GetTextAsync("/set?key=k&value=v");

        Assert.That(await browser.GetTextAsync("/get?key=k"), Is.EqualTo("v"));
    }

    [Test]
    public void UseServerSideSessions_WithoutAddServerSideSessions_ThrowsAClearError()
    {
        var builder = WebApplication.CreateSlimBuilder();
        using var app = builder.Build();

        var ex = Assert.Throws<InvalidOperationException>(() => app.UseServerSideSessions());

        Assert.That(ex!.Message, Does.Contain("AddServerSideSessions"));
    }

    [Test]
    public void MigrateServerSideSessionsAsync_WithoutAddServerSideSessions_ThrowsAClearError()
    {
        var builder = WebApplication.CreateSlimBuilder();
        using var app = builder.Build();

        var ex = Assert.ThrowsAsync<InvalidOperationException>(() => app.MigrateServerSideSessionsAsync());

        Assert.That(ex!.Message, Does.Contain("AddServerSideSessions"));
    }

    [Test]
    public void GetServerSideSession_WithoutTheMiddleware_ThrowsAClearError()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => new DefaultHttpContext().GetServerSideSession());

        Assert.That(ex!.Message, Does.Contain("UseServerSideSessions"));
    }

    [Test]
    public async Task Startup_WithValidOptions_Starts()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o =>
        {
            o.TableName = "_Sessions_1";
            o.AbsoluteTimeout = TimeSpan.FromHours(1);
            o.TouchInterval = TimeSpan.Zero;
        });

        Assert.That(await host.CreateBrowser().GetTextAsync("/count"), Is.EqualTo("1"));
    }
}
