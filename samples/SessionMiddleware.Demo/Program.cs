// A small page app on server-side sessions: a visit counter, a note kept in the session, a "forget me" button,
// signing in with ASP.NET Core cookie authentication whose sign-ins live in the session row (AddTicketStore), a
// "your sessions" page that lists and revokes the user's other sessions (with a live element, a Blazor Server component
// that shows the signed-out state the moment this browser's session ends anywhere), a cap of sessions per user, a
// "security settings" page that asks for a recent sign-in, and signing out, over the embedded SQLite default. Run it from the repository root with
//   dotnet run --project samples/SessionMiddleware.Demo
// and open http://127.0.0.1:5080 (the health check: /healthz). Pass --urls to listen elsewhere (e.g. --urls
// http://127.0.0.1:0 for any free port).

using System.Globalization;
using System.Security.Claims;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using SessionMiddleware;

const string DefaultUrl = "http://127.0.0.1:5080";
const string VisitsKey = "visits";
const string NoteKey = "note";
const string FlashKey = "flash";
const int MaxNoteLength = 2_000;
const int MaxNameLength = 64;
const int RememberDays = 14;
const string SignInPath = "/signin";
const string SessionsPath = "/sessions";
const string SecurityPath = "/security";
const string RecentSignInPolicy = "RecentSignIn";
const int RecentSignInMinutes = 5;

var builder = WebApplication.CreateBuilder(new WebApplicationOptions
{
    Args = args,
    // appsettings.json is copied next to the program, so it is found whatever the working directory.
    ContentRootPath = AppContext.BaseDirectory,
});

// Loopback only, unless addresses were given (--urls, ASPNETCORE_URLS, ASPNETCORE_HTTP_PORTS, ...).
if (string.IsNullOrEmpty(builder.Configuration["urls"]) &&
    string.IsNullOrEmpty(builder.Configuration["http_ports"]) &&
    string.IsNullOrEmpty(builder.Configuration["https_ports"]))
{
    builder.WebHost.UseUrls(DefaultUrl);
}

// The framework's Blazor script (_framework/blazor.web.js) is a static web asset of the SDK: served from where the build
// put it when the demo runs from its build output in any environment (a published demo carries it in wwwroot).
builder.WebHost.UseStaticWebAssets();

// Options from the "ServerSideSessions" section of appsettings.json (or the command line, e.g.
// --ServerSideSessions:ConnectionString="Data Source=/tmp/demo.db"). AddTicketStore() keeps cookie authentication's
// sign-ins in the browser's session row: revoking the session, its expiry or signing out signs the browser out.
builder.Services.AddServerSideSessions(builder.Configuration.GetSection(ServerSideSessionOptions.SectionName))
    .AddTicketStore();
builder.Services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme)
    .AddCookie(options =>
    {
        // Anonymous visitors of a page that requires authorization are sent here, with ?ReturnUrl=.
        options.LoginPath = SignInPath;
        // How long "remember me" keeps a browser signed in (across browser restarts), sliding while it is used.
        options.ExpireTimeSpan = TimeSpan.FromDays(RememberDays);
        options.SlidingExpiration = true;
    });
// Pages that change what protects the account ask for a sign-in of the last few minutes ("sudo mode"): an older one is
// sent to the sign-in page (with ?ReturnUrl=) to sign in again. A sliding renewal of the sign-in does not count.
builder.Services.AddAuthorizationBuilder()
    .AddPolicy(RecentSignInPolicy, policy => policy.RequireRecentSignIn(TimeSpan.FromMinutes(RecentSignInMinutes)));
builder.Services.AddAntiforgery();

// The live element on the sessions page: a Blazor Server component. AddServerSideSessions() ties each circuit to the
// browser's session: when the session ends (signed out, revoked from another device, expired), the circuit's user becomes
// anonymous at once, so AuthorizeView shows the signed-out state without a reload, and the circuit is closed.
builder.Services.AddRazorComponents()
    .AddInteractiveServerComponents()
    .AddServerSideSessions();
builder.Services.AddCascadingAuthenticationState();

// /healthz: Healthy when the session store answers and its table has the expected shape, Degraded when the cleaner
// keeps failing, Unhealthy when the database cannot be reached.
builder.Services.AddHealthChecks().AddServerSideSessionStore();

var app = builder.Build();

// Creates the session table on first start; checks it on every later start.
await app.MigrateServerSideSessionsAsync();

// The session first: authentication reads the sign-in from it.
app.UseServerSideSessions();
app.UseAuthentication();
app.UseAuthorization();

app.UseAntiforgery();

app.MapHealthChecks("/healthz");
// The Blazor Server endpoints the live element connects to: the framework's script and the circuits' hub.
app.MapStaticAssets();
app.MapRazorComponents<SessionMiddleware.Demo.Components.LiveStatus>()
    .AddInteractiveServerRenderMode();

var sessionOptions = app.Services.GetRequiredService<IOptions<ServerSideSessionOptions>>().Value;
var idleTimeout = sessionOptions.IdleTimeout;

app.MapGet("/", async (HttpContext context, IAntiforgery antiforgery) =>
{
    var visits = (context.Session.GetInt32(VisitsKey) ?? 0) + 1;
    context.Session.SetInt32(VisitsKey, visits);
    var note = context.Session.GetString(NoteKey);
    var signIn = await SignInOf(context);
    var tokens = antiforgery.GetAndStoreTokens(context);
    return Html(RenderHome(context.GetServerSideSession(), signIn, idleTimeout, visits, note, tokens));
});

app.MapPost("/note", async (HttpContext context, IAntiforgery antiforgery) =>
{
    if (await RejectForgeryAsync(context, antiforgery) is { } rejected)
    {
        return rejected;
    }

    var form = await context.Request.ReadFormAsync();
    var note = form["note"].ToString().Trim();
    if (note.Length == 0)
    {
        context.Session.Remove(NoteKey);
    }
    else
    {
        context.Session.SetString(NoteKey, note.Length > MaxNoteLength ? note[..MaxNoteLength] : note);
    }

    // Post/redirect/get: the session is committed before the redirect goes out, so the next GET sees the note.
    return SeeOther(context, "/");
});

app.MapPost("/forget", async (HttpContext context, IAntiforgery antiforgery) =>
{
    if (await RejectForgeryAsync(context, antiforgery) is { } rejected)
    {
        return rejected;
    }

    // Ends the session: its row is deleted and the cookie expired; the old cookie is never accepted again. The
    // sign-in lived in that row, so it ends too; signing out first also expires the authentication cookie.
    if (IsSignedIn(context))
    {
        await context.SignOutAsync(CookieAuthenticationDefaults.AuthenticationScheme);
    }

    context.GetServerSideSession().Abandon();
    return SeeOther(context, "/");
});

app.MapGet(SignInPath, async (HttpContext context, IAntiforgery antiforgery, string? returnUrl) =>
{
    var signIn = await SignInOf(context);
    var tokens = antiforgery.GetAndStoreTokens(context);
    return Html(RenderSignIn(signIn?.Name, LocalOrHome(returnUrl), tokens, RecentSignInMinutes));
});

app.MapPost(SignInPath, async (HttpContext context, IAntiforgery antiforgery) =>
{
    if (await RejectForgeryAsync(context, antiforgery) is { } rejected)
    {
        return rejected;
    }

    var form = await context.Request.ReadFormAsync();
    var name = form["name"].ToString().Trim();
    if (name.Length is 0 or > MaxNameLength)
    {
        return Results.Text($"A name of 1 to {MaxNameLength} characters is required.", statusCode: StatusCodes.Status400BadRequest);
    }

    // A demo has no passwords: the name is the user ID (the NameIdentifier claim, which the ticket store binds the
    // session to). The ticket store keeps the sign-in in this browser's session row and renews the session ID, so the
    // cookie sent before dies, as OWASP asks on every change of privilege. The session keeps its data.
    var identity = new ClaimsIdentity(
        [new Claim(ClaimTypes.NameIdentifier, name), new Claim(ClaimTypes.Name, name)],
        CookieAuthenticationDefaults.AuthenticationScheme);
    var remember = string.Equals(form["remember"].ToString(), "true", StringComparison.OrdinalIgnoreCase);
    await context.SignInAsync(
        CookieAuthenticationDefaults.AuthenticationScheme,
        new ClaimsPrincipal(identity),
        new AuthenticationProperties { IsPersistent = remember });
    return SeeOther(context, LocalOrHome(form["returnUrl"].ToString()));
});

app.MapPost("/signout", async (HttpContext context, IAntiforgery antiforgery) =>
{
    if (!IsSignedIn(context))
    {
        // Signed out already (here, or revoked from another device): nothing to end, and a stale form's token no
        // longer matches the anonymous user, so there is nothing to check either.
        return SeeOther(context, "/");
    }

    if (await RejectForgeryAsync(context, antiforgery) is { } rejected)
    {
        return rejected;
    }

    // Signing out of the app's cookie scheme ends the session row the sign-in lived in and expires both cookies.
    await context.SignOutAsync(CookieAuthenticationDefaults.AuthenticationScheme);
    return SeeOther(context, "/");
});

app.MapGet(SessionsPath, async (HttpContext context, IAntiforgery antiforgery, ISessionManager manager) =>
{
    var session = context.GetServerSideSession();
    var userId = UserIdOf(context)!;
    var sessions = await manager.ListForUserAsync(userId, context.RequestAborted);
    var flash = session.GetString(FlashKey);
    if (flash is not null)
    {
        session.Remove(FlashKey);
    }

    var tokens = antiforgery.GetAndStoreTokens(context);
    return LiveElement.Page(RenderSessions(context.User.Identity?.Name ?? userId, session.Id, sessions, flash, tokens, sessionOptions.MaxSessionsPerUser));
})
// Anonymous visitors (never signed in, signed out, or revoked from another device) are sent to the sign-in page.
.RequireAuthorization();

app.MapGet(SecurityPath, (HttpContext context) =>
    Html(RenderSecurity(context.User.Identity?.Name ?? "", context.GetServerSideSession(), RecentSignInMinutes)))
// A sign-in older than RecentSignInMinutes is challenged: to the sign-in page, and back here once signed in again.
.RequireAuthorization(RecentSignInPolicy);

app.MapPost("/sessions/revoke", async (HttpContext context, IAntiforgery antiforgery, ISessionManager manager) =>
{
    if (UserIdOf(context) is not { } userId)
    {
        return SignInFirst(context);
    }

    if (await RejectForgeryAsync(context, antiforgery) is { } rejected)
    {
        return rejected;
    }

    var session = context.GetServerSideSession();
    var form = await context.Request.ReadFormAsync();
    var id = form["id"].ToString();
    if (string.Equals(id, session.Id, StringComparison.Ordinal))
    {
        return Results.Text("That is this device's session: use \"Sign out\" to end it.", statusCode: StatusCodes.Status400BadRequest);
    }

    // Session IDs are not secrets: revoke only a session that belongs to the signed-in user.
    var mine = await manager.ListForUserAsync(userId, context.RequestAborted);
    if (!mine.Any(s => string.Equals(s.Id, id, StringComparison.Ordinal)) || !await manager.RevokeAsync(id, context.RequestAborted))
    {
        return Results.Text("You have no such session (it may have ended already).", statusCode: StatusCodes.Status404NotFound);
    }

    session.SetString(FlashKey, "Signed out the other device. Its next request is anonymous.");
    return SeeOther(context, SessionsPath);
});

app.MapPost("/sessions/revoke-others", async (HttpContext context, IAntiforgery antiforgery, ISessionManager manager) =>
{
    if (UserIdOf(context) is not { } userId)
    {
        return SignInFirst(context);
    }

    if (await RejectForgeryAsync(context, antiforgery) is { } rejected)
    {
        return rejected;
    }

    // This request signs no one in, so the session keeps its ID and session.Id is the row to spare. (In a request
    // that renews the ID, such as a sign-in, the row is still stored under the old ID until the response.)
    var session = context.GetServerSideSession();
    var count = await manager.RevokeAllForUserAsync(userId, exceptSessionId: session.Id, context.RequestAborted);
    session.SetString(FlashKey, count == 1 ? "Signed out 1 other session." : $"Signed out {count} other sessions.");
    return SeeOther(context, SessionsPath);
});

await app.StartAsync();
var addresses = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses;
foreach (var address in addresses)
{
    Console.WriteLine($"Demo listening on {address}");
}

await app.WaitForShutdownAsync();

static async Task<IResult?> RejectForgeryAsync(HttpContext context, IAntiforgery antiforgery) =>
    await antiforgery.IsRequestValidAsync(context)
        ? null
        : Results.Text(
            "The form was not sent by this page, or the page is stale (you signed in or out since it was loaded): reload it and try again.",
            statusCode: StatusCodes.Status400BadRequest);

static IResult SeeOther(HttpContext context, string location)
{
    context.Response.Headers.Location = location;
    return Results.StatusCode(StatusCodes.Status303SeeOther);
}

// A form posted by someone not (or no longer) signed in: to the sign-in page, then back to the sessions page.
static IResult SignInFirst(HttpContext context) =>
    SeeOther(context, SignInPath + QueryString.Create("ReturnUrl", SessionsPath));

static IResult Html(string page) => Results.Content(page, "text/html; charset=utf-8");

static bool IsSignedIn(HttpContext context) => context.User.Identity?.IsAuthenticated == true;

static string? UserIdOf(HttpContext context) =>
    IsSignedIn(context) ? context.User.FindFirstValue(ClaimTypes.NameIdentifier) : null;

// The signed-in user's name and whether this browser is remembered (until when), or null when anonymous.
static async Task<SignIn?> SignInOf(HttpContext context)
{
    var result = await context.AuthenticateAsync(CookieAuthenticationDefaults.AuthenticationScheme);
    if (!result.Succeeded || result.Principal.Identity?.Name is not { } name)
    {
        return null;
    }

    var properties = result.Properties;
    return new SignIn(name, properties?.IsPersistent == true ? properties.ExpiresUtc : null);
}

// Only a path on this site: "/x" but not "//host" or "/\host", which browsers read as another site.
static string LocalOrHome(string? returnUrl) =>
    !string.IsNullOrEmpty(returnUrl) && returnUrl[0] == '/' &&
    (returnUrl.Length == 1 || (returnUrl[1] != '/' && returnUrl[1] != '\\')) &&
    !returnUrl.Any(char.IsControl)
        ? returnUrl
        : "/";

static string Timestamp(DateTimeOffset time) => time.ToString("u", CultureInfo.InvariantCulture);

static string TokenField(AntiforgeryTokenSet tokens)
{
    var html = HtmlEncoder.Default;
    return $"""<input type="hidden" name="{html.Encode(tokens.FormFieldName)}" value="{html.Encode(tokens.RequestToken ?? "")}">""";
}

static string Layout(string title, string body) => $$"""
    <!DOCTYPE html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{{HtmlEncoder.Default.Encode(title)}}</title>
    <style>
    *, *::before, *::after { box-sizing: border-box; }
    body { font-family: system-ui, sans-serif; max-width: 52rem; margin: 1.5rem auto; padding: 0 1rem; line-height: 1.5; overflow-wrap: anywhere; }
    h1 { font-size: 1.6rem; line-height: 1.2; }
    input, textarea, button { font: inherit; max-width: 100%; }
    textarea { width: 100%; }
    button { padding: .3rem .8rem; }
    code { word-break: break-all; }
    dt { font-weight: bold; }
    #note { white-space: pre-wrap; }
    .notice { background: #fff6d6; border: 1px solid #e0c860; padding: .4rem .6rem; }
    .field { display: block; margin: .6rem 0; }
    .field input[type=text] { display: block; width: 100%; max-width: 22rem; }
    .sessions { list-style: none; padding: 0; margin: 1rem 0; display: grid; gap: .75rem; grid-template-columns: repeat(auto-fill, minmax(min(100%, 18rem), 1fr)); }
    .session { border: 1px solid #ccc; border-radius: .5rem; padding: .6rem .8rem; min-width: 0; }
    .session.this-device { background: #eef6ee; border-color: #2a7a2a; }
    .session .device { font-weight: bold; }
    .session .facts { display: grid; grid-template-columns: auto 1fr; gap: 0 .8rem; margin: .4rem 0; }
    .session .facts dt { font-weight: normal; color: #555; }
    .session .facts dd { margin: 0; }
    .session form { margin: .4rem 0 0; }
    .badge { background: #2a7a2a; color: #fff; border-radius: .3rem; padding: 0 .4rem; font-size: .85em; font-weight: normal; white-space: nowrap; }
    .user-agent { display: block; color: #555; font-size: .8em; }
    .live { border: 1px solid #ccc; border-radius: .5rem; padding: 0 .8rem; margin: .6rem 0; }
    .dot { display: inline-block; width: .6em; height: .6em; border-radius: 50%; margin-right: .2em; }
    .dot.on { background: #2a7a2a; }
    .dot.off { background: #a33; }
    </style>
    </head>
    <body>
    {{body}}
    </body>
    </html>

    """;

static string RenderHome(IServerSideSession session, SignIn? signIn, TimeSpan idleTimeout, int visits, string? note, AntiforgeryTokenSet tokens)
{
    var html = HtmlEncoder.Default;
    var token = TokenField(tokens);
    var noteHtml = note is null ? "<em>No note yet.</em>" : html.Encode(note);
    var account = signIn is null
        ? $"""
          <p id="not-signed-in">You are not signed in. <a id="sign-in-link" href="{SignInPath}">Sign in</a> (a name is
          enough) in two browsers to see and sign out your sessions on every device.</p>
          """
        : $"""
          <p id="signed-in-as">Signed in as <strong>{html.Encode(signIn.Name)}</strong>.</p>
          <p id="remembered">{(signIn.RememberedUntil is { } until
              ? $"This browser remembers you until {Timestamp(until)}, also when it is closed (each visit moves that on)."
              : $"Until you close the browser, or after {idleTimeout.TotalMinutes.ToString("0", CultureInfo.InvariantCulture)} minutes without a visit.")}</p>
          <p id="signed-in-at">You signed in at {(session.SignedInAt is { } signedInAt ? Timestamp(signedInAt) : "an unknown time")}. Staying active renews the sign-in, but only signing in again moves this.</p>
          <p><a id="sessions-link" href="{SessionsPath}">Your sessions</a>: every browser signed in as you, where you can sign them out.</p>
          <p><a id="security-link" href="{SecurityPath}">Security settings</a>: asks you to sign in again when you signed in more than {RecentSignInMinutes} minutes ago.</p>
          <form id="sign-out" method="post" action="/signout">
          {token}
          <button type="submit">Sign out</button>
          </form>
          """;

    var page = new StringBuilder();
    page.Append(CultureInfo.InvariantCulture, $"""
        <h1>SessionMiddleware demo</h1>
        <p>You have visited this page <strong id="visits">{visits}</strong> time{(visits == 1 ? "" : "s")} in this session.</p>

        <h2>Account</h2>
        {account}

        <h2>Your note</h2>
        <p id="note">{noteHtml}</p>
        <form method="post" action="/note">
        {token}
        <textarea name="note" rows="4" maxlength="{MaxNoteLength}">{(note is null ? "" : html.Encode(note))}</textarea>
        <button type="submit">Save note</button>
        </form>

        <h2>Forget me</h2>
        <form id="forget" method="post" action="/forget">
        {token}
        <button type="submit">Forget me</button>
        </form>
        <p>Ends the session (<code>Abandon()</code>): the server deletes it and the cookie is expired. The counter starts
        again, the note is gone, and you are signed out.</p>

        <h2>Your session</h2>
        <dl>
        <dt>Id</dt><dd><code id="session-id">{html.Encode(session.Id)}</code></dd>
        <dt>User</dt><dd id="user-id">{(session.UserId is null ? "<em>none</em>" : html.Encode(session.UserId))}</dd>
        <dt>Created</dt><dd id="created-at">{Timestamp(session.CreatedAt)}</dd>
        <dt>Last access</dt><dd id="last-access">{Timestamp(session.LastAccessAt)}</dd>
        </dl>
        <p>Your browser holds only a cookie with a protected random ID (and, once signed in, an authentication cookie that
        refers to the sign-in kept in the session). The data lives in a row of a SQLite database on the server, keyed by
        a SHA-256 hash of that ID; the Id above is derived from that hash.</p>
        """);
    return Layout("SessionMiddleware demo", page.ToString());
}

static string RenderSignIn(string? signedInAs, string returnUrl, AntiforgeryTokenSet tokens, int recentSignInMinutes)
{
    var html = HtmlEncoder.Default;
    var current = signedInAs is null
        ? ""
        : $"""<p id="signed-in-as">Signed in as <strong>{html.Encode(signedInAs)}</strong>. Signing in with another name ends that sign-in in this browser.</p>""";
    if (signedInAs is not null && returnUrl != "/")
    {
        // Sent here although signed in: the page asked for a more recent sign-in (RequireRecentSignIn).
        current += $"""

            <p class="notice" id="sign-in-again">The page you asked for needs a sign-in of the last {recentSignInMinutes} minutes: sign in again to go on.</p>
            """;
    }

    return Layout("Sign in", $"""
        <h1>Sign in</h1>
        {current}
        <p class="notice" id="no-passwords"><strong>This demo has no passwords.</strong> Whoever types a name is signed in
        as that name, so anyone who types the same name shares its sessions. Do not sign in to anything real this way.</p>
        <form id="sign-in" method="post" action="{SignInPath}">
        {TokenField(tokens)}
        <input type="hidden" name="returnUrl" value="{html.Encode(returnUrl)}">
        <label class="field">Your name <input type="text" name="name" required maxlength="{MaxNameLength}" autocomplete="username" autofocus></label>
        <label class="field"><input type="checkbox" name="remember" value="true"> Remember me on this device for {RememberDays} days, also after the browser is closed</label>
        <button type="submit">Sign in</button>
        </form>
        <p>Signing in keeps your sign-in in this browser's session on the server and gives the session a new ID: the
        session cookie you had before is dead, but your visits and note stay. Sign in with the same name in another
        browser to see both sessions, and sign one out from the other.</p>
        <p><a href="/">Home</a></p>
        """);
}

static string RenderSessions(string displayName, string currentId, IReadOnlyList<SessionInfo> sessions, string? flash, AntiforgeryTokenSet tokens, int maxSessionsPerUser)
{
    var html = HtmlEncoder.Default;
    var token = TokenField(tokens);
    var items = new StringBuilder();
    foreach (var info in sessions)
    {
        var current = string.Equals(info.Id, currentId, StringComparison.Ordinal);
        var action = current
            ? ""
            : $"""
              <form class="revoke" method="post" action="/sessions/revoke">
              {token}
              <input type="hidden" name="id" value="{html.Encode(info.Id)}">
              <button type="submit">Revoke</button>
              </form>
              """;
        items.Append(CultureInfo.InvariantCulture, $"""
            <li class="session{(current ? " this-device" : "")}" data-session-id="{html.Encode(info.Id)}">
            <div class="device">{html.Encode(DescribeDevice(info.UserAgent))}{(current ? """ <span class="badge">this device</span>""" : "")}</div>
            <span class="user-agent">{html.Encode(info.UserAgent ?? "no User-Agent")}</span>
            <dl class="facts">
            <dt>IP address</dt><dd class="ip">{html.Encode(info.IpAddress ?? "unknown")}</dd>
            <dt>Created</dt><dd class="created">{Timestamp(info.CreatedAt)}</dd>
            <dt>Last seen</dt><dd class="last-seen">{Timestamp(info.LastAccessAt)}</dd>
            </dl>
            {action}
            </li>

            """);
    }

    var others = sessions.Count(s => !string.Equals(s.Id, currentId, StringComparison.Ordinal));
    var page = new StringBuilder();
    page.Append(CultureInfo.InvariantCulture, $"""
        <h1>Your sessions</h1>
        <p id="signed-in-as">Signed in as <strong>{html.Encode(displayName)}</strong>. <a href="/">Home</a></p>
        {SessionMiddleware.Demo.Components.LivePage.Placeholder}
        {(flash is null ? "" : $"""<p class="notice" id="flash">{html.Encode(flash)}</p>""")}
        <p>Every browser signed in as you, most recently used first. Revoking one ends it on the server at once:
        its next request is anonymous, even with the cookies it still holds.</p>
        {(maxSessionsPerUser > 0 ? $"""<p id="session-cap">You can be signed in on at most {maxSessionsPerUser} devices at once (<code>MaxSessionsPerUser</code>): signing in on one more signs out the one you used least recently.</p>""" : "")}
        <ul class="sessions" id="sessions">
        {items}</ul>
        {(others == 0 ? """<p id="no-others">No other device is signed in as you.</p>""" : $"""
            <form id="revoke-others" method="post" action="/sessions/revoke-others">
            {token}
            <p><button type="submit">Sign out everywhere else</button> ({others} other session{(others == 1 ? "" : "s")})</p>
            </form>
            """)}
        <form id="sign-out" method="post" action="/signout">
        {token}
        <p><button type="submit">Sign out</button></p>
        </form>
        """);
    return Layout("Your sessions", page.ToString());
}

static string RenderSecurity(string displayName, IServerSideSession session, int recentSignInMinutes)
{
    var html = HtmlEncoder.Default;
    var signedInAt = session.SignedInAt is { } at ? Timestamp(at) : "an unknown time";
    return Layout("Security settings", $"""
        <h1>Security settings</h1>
        <p id="signed-in-as">Signed in as <strong>{html.Encode(displayName)}</strong>. <a href="/">Home</a></p>
        <p id="recent-sign-in">You signed in at <strong>{signedInAt}</strong>, less than {recentSignInMinutes} minutes ago, so
        you may see this page (<code>RequireRecentSignIn</code>). Come back later and you are asked to sign in again first,
        however active you were in between: a sliding renewal of the sign-in does not count.</p>
        <p>This is where a real app changes what protects the account: the password, two-factor settings, the e-mail
        address. With ASP.NET Core Identity, such a change (a new security stamp) also signs out every other session of
        the user at once, and keeps this one.</p>
        <p><a href="{SessionsPath}">Your sessions</a></p>
        """);
}

// A rough "browser on system" from a User-Agent, for people; the full string is shown beside it.
static string DescribeDevice(string? userAgent)
{
    if (string.IsNullOrEmpty(userAgent))
    {
        return "Unknown device";
    }

    string? browser =
        userAgent.Contains("Edg/", StringComparison.Ordinal) ? "Edge" :
        userAgent.Contains("HeadlessChrome/", StringComparison.Ordinal) ? "Headless Chrome" :
        userAgent.Contains("Firefox/", StringComparison.Ordinal) ? "Firefox" :
        userAgent.Contains("Chrome/", StringComparison.Ordinal) ? "Chrome" :
        userAgent.Contains("Safari/", StringComparison.Ordinal) ? "Safari" :
        null;
    string? system =
        userAgent.Contains("Android", StringComparison.Ordinal) ? "Android" :
        userAgent.Contains("iPhone", StringComparison.Ordinal) || userAgent.Contains("iPad", StringComparison.Ordinal) ? "iOS" :
        userAgent.Contains("Windows", StringComparison.Ordinal) ? "Windows" :
        userAgent.Contains("Mac OS X", StringComparison.Ordinal) ? "macOS" :
        userAgent.Contains("Linux", StringComparison.Ordinal) ? "Linux" :
        null;
    return (browser, system) switch
    {
        (not null, not null) => $"{browser} on {system}",
        (not null, null) => browser,
        (null, not null) => $"A browser on {system}",
        _ => userAgent.Split(' ', 2)[0],
    };
}

/// <summary>Who is signed in, and until when this browser is remembered (a persistent sign-in), if it is.</summary>
internal sealed record SignIn(string Name, DateTimeOffset? RememberedUntil);
