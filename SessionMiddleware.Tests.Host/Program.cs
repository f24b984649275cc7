// Test host: `dotnet SessionMiddleware.Tests.Host.dll --db <file> --keys <folder> [--postgres <connection string>] [--urls http://127.0.0.1:0]`
// (with --postgres, the sessions are in PostgreSQL and --db is not used).
// Prints "Listening on <url>" once it serves. Endpoints: /set?key=&value=, /get?key=, /keys, /id, and
// /load?seconds=&size=&writers= (creates sessions of `size` bytes straight through the store for that long, with that many
// writers at once; answers "<created> <failed> <first error>"), /bind?user= (answers the ID), /revoke?id= (ISessionManager),
// and /wait-ended?seconds= (a long request: answers "ended" as soon as the session's IServerSideSession.Ended is
// cancelled, or "timeout"). `--live on|off`: a SignalR hub with cookie sign-in (LiveMode.cs).
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using SessionMiddleware;

var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
builder.Logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning);
var db = builder.Configuration["db"] ?? throw new InvalidOperationException("--db is required");
var keys = builder.Configuration["keys"] ?? throw new InvalidOperationException("--keys is required");
builder.Services.AddDataProtection().SetApplicationName("SessionMiddleware.Tests.Host").PersistKeysToFileSystem(new DirectoryInfo(keys));
var sessions = builder.Services.AddServerSideSessions(o =>
{
    o.ConnectionString = $"Data Source={db}";
    o.TouchInterval = TimeSpan.Zero;
    o.NewSessionLimit = 0;   // the tests create sessions at full speed, all from 127.0.0.1
});
if (builder.Configuration["postgres"] is { } postgres)
{
    sessions.UsePostgreSql(postgres);
}
var live = builder.Configuration["live"];
if (live is not null)
{
    LiveMode.AddServices(builder, sessions, live);
}
if (builder.Configuration["urls"] is null)
{
    builder.WebHost.UseUrls("http://127.0.0.1:0");
}

var app = builder.Build();
await app.MigrateServerSideSessionsAsync();
app.UseServerSideSessions();
if (live is not null)
{
    LiveMode.Map(app);
}
app.MapGet("/set", (HttpContext c, string key, string value) =>
{
    c.Session.SetString(key, value);
    return "ok";
});
app.MapGet("/get", (HttpContext c, string key) => c.Session.GetString(key) ?? "(none)");
app.MapGet("/keys", (HttpContext c) => string.Join(",", c.Session.Keys.Order(StringComparer.Ordinal)));
app.MapGet("/id", (HttpContext c) => c.Session.Id);
app.MapGet("/bind", (HttpContext c, string user) =>
{
    c.GetServerSideSession().BindToUser(user);
    return c.Session.Id;
});
app.MapGet("/revoke", async (ISessionManager manager, string id) => await manager.RevokeAsync(id) ? "revoked" : "none");
app.MapGet("/wait-ended", async (HttpContext c, double seconds) =>
{
    var ended = c.GetServerSideSession().Ended;

    // The headers tell the client that the session is held from here on.
    c.Response.ContentType = "text/plain";
    await c.Response.StartAsync();
    await c.Response.Body.FlushAsync();
    var answer = "ended";
    try
    {
        await Task.Delay(TimeSpan.FromSeconds(seconds), ended);
        answer = "timeout";
    }
    catch (OperationCanceledException)
    {
    }

    await c.Response.WriteAsync(answer);
});
app.MapGet("/load", async (IServerSideSessionStore store, double seconds, int size, int writers) =>
{
    var data = new byte[size];
    long created = 0, failed = 0;
    string? firstError = null;
    using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
    await Task.WhenAll(Enumerable.Range(0, writers).Select(_ => Task.Run(async () =>
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await store.CreateAsync(new NewSession(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32), data, null, null, null));
                Interlocked.Increment(ref created);
            }
            catch (Exception ex)
            {
                Interlocked.Increment(ref failed);
                Interlocked.CompareExchange(ref firstError, ex.Message, null);
            }
        }
    })));
    return $"{created} {failed} {firstError}";
});

await app.StartAsync();
foreach (var address in app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses)
{
    Console.WriteLine($"Listening on {address}");
}

await app.WaitForShutdownAsync();
