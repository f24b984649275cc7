using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
// The benchmark server: the same three endpoints under each session configuration, on Kestrel at 127.0.0.1.
//
//   SessionMiddleware.Benchmarks.Server <config> --port N [--data-dir DIR] [--keys-dir DIR] [--redis HOST:PORT] [--postgres CONNECTION-STRING]
//                                        [--touch-interval SECONDS] [--gated-cleanup] [--log-errors]
//                                        [--parent-pid PID] [--max-lifetime SECONDS]
//
// The server stops by itself after --max-lifetime seconds (default 3600) or once --parent-pid has exited.
//
// config: none | aspnet-memory | aspnet-redis | aspnet-sqlite | ours-memory | ours-sqlite | ours-sqlite-touch0 | ours-postgres
//         | auth-cookie | ours-sqlite-auth | ours-sqlite-listened (ours-sqlite with a MeterListener and an ActivityListener on
//         the library's meter and activity source: the instrumentation's cost when listened to; GET /bench/listened counts)
//         | ours-sqlite-sealed (ours-sqlite with ProtectData: each row's data sealed with Data Protection)
// (ours-postgres needs --postgres: an Npgsql connection string to an empty database; the runner makes one per round)
//
// Endpoints (every wrong answer is a non-2xx status, so that wrk counts it as an error):
//   GET /read    reads key "k" of the request's session; 404 when the session or the key is missing
//   GET /write   increments counter "c" of the request's session; 404 when the session is missing
//   GET /new     (sent without a cookie) creates a session and sets "k"; the Set-Cookie is the seed the runner keeps
//   GET /health  200 once the server is up
//   GET /bench/info  the SQLite, SQLitePCLRaw and Microsoft.Data.Sqlite versions in this process
//   POST /bench/cleanup         runs the library's cleaner once now (only with --gated-cleanup)
//   GET  /bench/cleanup-status  the cleaner runs seen so far, as JSON (only with --gated-cleanup)
using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Caching.Distributed;
using NeoSmart.Caching.Sqlite;
using SessionMiddleware.Benchmarks.Server;

var settings = ServerSettings.Parse(args);
Directory.CreateDirectory(settings.DataDir);

var builder = WebApplication.CreateSlimBuilder();
builder.WebHost.UseKestrel(o =>
{
    o.Listen(IPAddress.Loopback, settings.Port);
    o.AddServerHeader = false;
});

// Logging off: no provider, so every logger is disabled. Two opt-ins for the extra modes and for debugging.
builder.Logging.ClearProviders();
var cleanupLog = new CleanupLogCapture();
if (settings.GatedCleanup)
{
    builder.Logging.AddProvider(cleanupLog);
    builder.Logging.AddFilter<CleanupLogCapture>((category, level) =>
        category is not null && category.Contains("Cleanup", StringComparison.Ordinal) && level >= LogLevel.Information);
}

if (settings.LogErrors)
{
    builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
    builder.Logging.AddFilter<Microsoft.Extensions.Logging.Console.ConsoleLoggerProvider>((_, level) => level >= LogLevel.Warning);
}

// Keys in the run's own folder: nothing written to the home directory, nothing shared between runs. --keys-dir: a
// folder shared by the servers of one run (the two-node configuration: a cookie of one is read by the other).
builder.Services.AddDataProtection()
    .PersistKeysToFileSystem(new DirectoryInfo(settings.KeysDir ?? Path.Combine(settings.DataDir, "keys")))
    .SetApplicationName("SessionMiddleware.Benchmarks");

var idleTimeout = TimeSpan.FromMinutes(20);
GatedCleanupTimeProvider? gate = null;
switch (settings.Config)
{
    case "none":
        break;

    case "aspnet-memory":
        builder.Services.AddDistributedMemoryCache();
        AddAspNetSession(builder.Services, idleTimeout);
        break;

    case "aspnet-redis":
        builder.Services.AddStackExchangeRedisCache(o =>
        {
            o.Configuration = settings.Redis ?? throw new ArgumentException("aspnet-redis needs --redis HOST:PORT.");
            o.InstanceName = "bench:";
        });
        AddAspNetSession(builder.Services, idleTimeout);
        break;

    case "aspnet-sqlite":
        // NeoSmart.Caching.Sqlite registered by hand (its DI helper package is not served). SqliteCache uses
        // SQLitePCLRaw directly, so the provider is initialised first, as its helper would do.
        SQLitePCL.Batteries_V2.Init();
        var cachePath = Path.Combine(settings.DataDir, "cache.db");
        builder.Services.AddSingleton<IDistributedCache>(sp => new SqliteCache(
            new SqliteCacheOptions { CachePath = cachePath },
            sp.GetRequiredService<ILogger<SqliteCache>>()));
        AddAspNetSession(builder.Services, idleTimeout);
        break;

    case "auth-cookie":
        // ASP.NET Core's cookie authentication alone: the ticket in the cookie, no session.
        AddCookieAuthentication(builder.Services);
        break;

    case "ours-memory":
    case "ours-sqlite":
    case "ours-sqlite-touch0":
    case "ours-sqlite-auth":
    case "ours-sqlite-listened":
    case "ours-sqlite-sealed":
    case "ours-postgres":
        if (settings.GatedCleanup)
        {
            // The cleaner's PeriodicTimer comes from the DI TimeProvider: this one holds back the timer with the
            // sentinel period until /bench/cleanup fires it; every clock reading and other timer is the system's.
            gate = new GatedCleanupTimeProvider(GatedCleanupTimeProvider.SentinelPeriod);
            builder.Services.AddSingleton<TimeProvider>(gate);
        }

        var sessions = builder.Services.AddServerSideSessions(o =>
        {
            if (settings.Config != "ours-postgres")
            {
                o.ConnectionString = $"Data Source={Path.Combine(settings.DataDir, "sessions.db")}";
            }

            o.IdleTimeout = idleTimeout;

            // Every /new comes from 127.0.0.1 as fast as wrk can send it: the default NewSessionLimit (100 a minute per
            // client) would answer nearly all of them 429, so the benchmarks measure the library without it.
            o.NewSessionLimit = 0;
            o.ProtectData = settings.Config == "ours-sqlite-sealed";
            if (settings.Config == "ours-sqlite-touch0")
            {
                o.TouchInterval = TimeSpan.Zero;
            }
            else if (settings.TouchIntervalSeconds is { } touch)
            {
                o.TouchInterval = TimeSpan.FromSeconds(touch);
            }

            if (gate is not null)
            {
                o.CleanupInterval = GatedCleanupTimeProvider.SentinelPeriod;
            }
        });
        if (settings.Config == "ours-memory")
        {
            sessions.UseStore(sp => new InMemorySessionStore(sp.GetRequiredService<TimeProvider>()));
        }

        if (settings.Config == "ours-postgres")
        {
            sessions.UsePostgreSql(settings.Postgres ?? throw new ArgumentException("ours-postgres needs --postgres CONNECTION-STRING."));
        }

        if (settings.Config == "ours-sqlite-auth")
        {
            // The same cookie authentication, its ticket kept in the session row.
            sessions.AddTicketStore();
            AddCookieAuthentication(builder.Services);
        }

        break;

    default:
        Console.Error.WriteLine($"Unknown configuration '{settings.Config}'. Known: {string.Join(", ", ServerSettings.Configs)}.");
        return 2;
}

using var listeners = settings.Config == "ours-sqlite-listened" ? new InstrumentationListeners() : null;
var app = builder.Build();
var signsIn = settings.Config.EndsWith("auth", StringComparison.Ordinal) || settings.Config == "auth-cookie";
var hasSession = settings.Config is not ("none" or "auth-cookie");
if (settings.Config.StartsWith("ours-", StringComparison.Ordinal))
{
    await app.MigrateServerSideSessionsAsync();
    app.UseServerSideSessions();
}
else if (hasSession)
{
    app.UseSession();
}

if (signsIn)
{
    // The authenticated configurations: /new signs in, /read and /write answer 401 without a sign-in.
    app.UseAuthentication();
    app.Use(async (context, next) =>
    {
        var guarded = context.Request.Path.StartsWithSegments("/read") || context.Request.Path.StartsWithSegments("/write");
        if (!guarded || context.User.Identity?.IsAuthenticated == true)
        {
            await next(context);
            return;
        }

        context.Response.StatusCode = StatusCodes.Status401Unauthorized;
    });
}

const string Value = "value-of-k-0123456789abcdef";
var noneCounter = 0L;

app.MapGet("/health", () => Results.Text("ok"));
app.MapGet("/bench/listened", () => Results.Text(listeners?.Summary ?? "no listeners"));

// What the SQLite configurations run on: in this process SQLitePCLRaw is the version NeoSmart.Caching.Sqlite pulls in.
app.MapGet("/bench/info", () =>
{
    using var connection = new Microsoft.Data.Sqlite.SqliteConnection("Data Source=:memory:");
    connection.Open();
    using var command = connection.CreateCommand();
    command.CommandText = "SELECT sqlite_version();";
    var pcl = typeof(SQLitePCL.raw).Assembly.GetName().Version;
    return Results.Text($"SQLite {command.ExecuteScalar()}, SQLitePCLRaw {pcl}, Microsoft.Data.Sqlite {typeof(Microsoft.Data.Sqlite.SqliteConnection).Assembly.GetName().Version}");
});

app.MapGet("/read", async (HttpContext context) =>
{
    if (!hasSession)
    {
        return Results.Text(Value);
    }

    await context.Session.LoadAsync(context.RequestAborted);
    var value = context.Session.GetString("k");
    return value is null ? Results.NotFound("no session") : Results.Text(value);
});

app.MapGet("/write", async (HttpContext context) =>
{
    if (!hasSession)
    {
        return Results.Text(Interlocked.Increment(ref noneCounter).ToString(CultureInfo.InvariantCulture));
    }

    await context.Session.LoadAsync(context.RequestAborted);
    if (context.Session.GetString("k") is null)
    {
        return Results.NotFound("no session");
    }

    var counter = (context.Session.GetInt32("c") ?? 0) + 1;
    context.Session.SetInt32("c", counter);
    return Results.Text(counter.ToString(CultureInfo.InvariantCulture));
});

app.MapGet("/new", async (HttpContext context) =>
{
    if (signsIn)
    {
        var user = "user-" + Interlocked.Increment(ref noneCounter).ToString(CultureInfo.InvariantCulture);
        await context.SignInAsync(new System.Security.Claims.ClaimsPrincipal(new System.Security.Claims.ClaimsIdentity(
            [new System.Security.Claims.Claim(System.Security.Claims.ClaimTypes.NameIdentifier, user), new System.Security.Claims.Claim(System.Security.Claims.ClaimTypes.Name, user)],
            CookieAuthenticationDefaults.AuthenticationScheme)));
    }

    if (!hasSession)
    {
        return Results.Text("ok");
    }

    await context.Session.LoadAsync(context.RequestAborted);
    context.Session.SetString("k", Value);
    return Results.Text("ok");
});

if (settings.GatedCleanup)
{
    app.MapPost("/bench/cleanup", () =>
    {
        if (gate is null)
        {
            return Results.BadRequest("--gated-cleanup applies to the ours-* configurations only");
        }

        var fired = gate.Fire();
        return fired == 0 ? Results.Problem("the cleaner's timer has not been created yet") : Results.Text("fired");
    });
    app.MapGet("/bench/cleanup-status", () => Results.Json(cleanupLog.Snapshot()));
}

_ = Watchdog.RunAsync(app, settings.ParentPid, TimeSpan.FromSeconds(settings.MaxLifetimeSeconds));
await app.RunAsync();
return 0;

static void AddCookieAuthentication(IServiceCollection services) =>
    services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme).AddCookie();

static void AddAspNetSession(IServiceCollection services, TimeSpan idleTimeout) =>
    services.AddSession(o =>
    {
        o.IdleTimeout = idleTimeout;
        o.Cookie.IsEssential = true;
    });
