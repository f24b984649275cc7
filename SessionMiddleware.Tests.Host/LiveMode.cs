using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.SignalR;
using SessionMiddleware;
using SessionMiddleware.Live;

/// <summary>
/// <c>--live on|off</c>: cookie sign-in through the ticket store and a SignalR hub at /hub, with this library's hub
/// filter (on) or without it (off, the baseline of a memory comparison); /signin?user=, and /stats (sessions held, the
/// SQLite feed's reads, the registry's store checks, managed memory after a full collection).
/// </summary>
internal static class LiveMode
{
    public static void AddServices(WebApplicationBuilder builder, IServerSideSessionsBuilder sessions, string mode)
    {
        sessions.AddTicketStore();
        builder.Services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme).AddCookie();
        var signalR = builder.Services.AddSignalR();
        if (mode == "on")
        {
            signalR.AddServerSideSessions();
        }
    }

    public static void Map(WebApplication app)
    {
        app.UseAuthentication();
        app.MapGet("/signin", async (HttpContext c, string user) =>
        {
            var identity = new ClaimsIdentity([new Claim(ClaimTypes.NameIdentifier, user), new Claim(ClaimTypes.Name, user)], CookieAuthenticationDefaults.AuthenticationScheme);
            await c.SignInAsync(new ClaimsPrincipal(identity));
            return c.Session.Id;
        });
        app.MapGet("/stats", (LiveSessionRegistry registry, IEnumerable<IHostedService> hosted) =>
        {
            var monitor = hosted.OfType<LiveSessionMonitor>().Single();
            return $"{registry.Count} {monitor.FeedReads} {registry.StoreChecks} {GC.GetTotalMemory(forceFullCollection: true)}";
        });
        app.MapHub<PingHub>("/hub");
    }

    private sealed class PingHub : Hub
    {
        public string Ping() => Context.ConnectionId;
    }
}
