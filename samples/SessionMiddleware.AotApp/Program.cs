// A minimal app on server-side sessions published with Native AOT (PublishAot): a value written to and read back from
// the session, cookie authentication whose sign-ins live in the session row (AddTicketStore), an [Authorize] endpoint,
// the cleaner, over the embedded SQLite default. AotTests (SessionMiddleware.FunctionalTests) publishes and runs it:
//   aot-app --urls http://127.0.0.1:0 --ServerSideSessions:ConnectionString="Data Source=/tmp/aot.db"
// It prints "AOT app listening on <address>" once it listens. POST /clock/advance?minutes=N moves the app's clock (the
// one TimeProvider of the library and of cookie authentication) forward, so that a test can let sessions expire.

using System.Security.Claims;
using System.Text;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using SessionMiddleware;

var clock = new AdjustableClock();
var builder = WebApplication.CreateSlimBuilder(args);
builder.Services.AddSingleton<TimeProvider>(clock);

builder.Services.AddServerSideSessions(builder.Configuration.GetSection(ServerSideSessionOptions.SectionName))
    .AddTicketStore();
builder.Services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme)
    .AddCookie(options => options.Events.OnRedirectToLogin = context =>
    {
        context.Response.StatusCode = StatusCodes.Status401Unauthorized;
        return Task.CompletedTask;
    });
builder.Services.AddAuthorization();
builder.Services.AddHealthChecks().AddServerSideSessionStore();

var app = builder.Build();
await app.MigrateServerSideSessionsAsync();

app.UseServerSideSessions();
app.UseAuthentication();
app.UseAuthorization();

app.MapPost("/note", async (HttpContext context) =>
{
    var note = await new StreamReader(context.Request.Body, Encoding.UTF8).ReadToEndAsync(context.RequestAborted);
    context.Session.SetString("note", note);
    return Results.Text(context.Session.Id);
});
app.MapGet("/note", (HttpContext context) =>
    Results.Text($"{context.Session.Id} {context.Session.GetString("note") ?? "(none)"}"));

app.MapPost("/signin", async (HttpContext context, string name) =>
{
    var identity = new ClaimsIdentity([new Claim(ClaimTypes.NameIdentifier, name), new Claim(ClaimTypes.Name, name)], CookieAuthenticationDefaults.AuthenticationScheme);
    await context.SignInAsync(new ClaimsPrincipal(identity));
    return Results.Text("signed in");
});
app.MapGet("/me", (HttpContext context) =>
        Results.Text($"{context.User.Identity!.Name} {context.GetServerSideSession().UserId ?? "(unbound)"}"))
    .RequireAuthorization();

app.MapPost("/clock/advance", (int minutes) =>
{
    clock.Advance(TimeSpan.FromMinutes(minutes));
    return Results.Text(clock.GetUtcNow().ToString("O"));
});

// The store's health, with the cleaner's last run (last_cleanup, rows_deleted), as plain "key=value" lines.
app.MapHealthChecks("/healthz", new HealthCheckOptions { ResponseWriter = WriteHealthAsync });

app.Lifetime.ApplicationStarted.Register(() =>
{
    var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
    Console.WriteLine($"AOT app listening on {addresses.First()}");
});

await app.RunAsync();

static Task WriteHealthAsync(HttpContext context, HealthReport report)
{
    var text = new StringBuilder($"status={report.Status}\n");
    foreach (var (name, entry) in report.Entries)
    {
        text.Append($"{name}={entry.Status} {entry.Description}\n");
        foreach (var (key, value) in entry.Data)
        {
            text.Append($"{key}={value}\n");
        }
    }

    context.Response.ContentType = "text/plain; charset=utf-8";
    return context.Response.WriteAsync(text.ToString());
}

/// <summary>The system clock, moved forward by what POST /clock/advance added; timers run in real time.</summary>
internal sealed class AdjustableClock : TimeProvider
{
    private long _offsetTicks;

    public void Advance(TimeSpan by) => Interlocked.Add(ref _offsetTicks, by.Ticks);

    public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + TimeSpan.FromTicks(Interlocked.Read(ref _offsetTicks));
}
