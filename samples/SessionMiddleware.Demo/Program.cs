// A small page app on server-side sessions: a visit counter, a note kept in the session, a "forget me" button,
// signing in with a name, a "your sessions" page that lists and revokes the user's other sessions, and signing
// out, over the embedded SQLite default. Run it from the repository root with
//   dotnet run --project samples/SessionMiddleware.Demo
// and open http://127.0.0.1:5080. Pass --urls to listen elsewhere (e.g. --urls http://127.0.0.1:0 for any free port).

using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using SessionMiddleware;

const string DefaultUrl = "http://127.0.0.1:5080";
const string VisitsKey = "visits";
const string NoteKey = "note";
const string NameKey = "name";
const string FlashKey = "flash";
const int MaxNoteLength = 2_000;
const int MaxNameLength = 64;

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

// Options from the "ServerSideSessions" section of appsettings.json (or the command line, e.g.
// --ServerSideSessions:ConnectionString="Data Source=/tmp/demo.db").
builder.Services.AddServerSideSessions(builder.Configuration.GetSection(ServerSideSessionOptions.SectionName));
builder.Services.AddAntiforgery();

var app = builder.Build();

// Creates the session table on first start; checks it on every later start.
await app.MigrateServerSideSessionsAsync();

app.UseServerSideSessions();

app.MapGet("/", (HttpContext context, IAntiforgery antiforgery) =>
{
    var visits = (context.Session.GetInt32(VisitsKey) ?? 0) + 1;
    context.Session.SetInt32(VisitsKey, visits);
    var note = context.Session.GetString(NoteKey);
    var tokens = antiforgery.GetAndStoreTokens(context);
    return Html(RenderHome(context.GetServerSideSession(), DisplayName(context), visits, note, tokens));
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

    // Ends the session: its row is deleted and the cookie expired; the old cookie is never accepted again.
    context.GetServerSideSession().Abandon();
    return SeeOther(context, "/");
});

app.MapPost("/signin", async (HttpContext context, IAntiforgery antiforgery) =>
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

    // A demo has no passwords: the name is the user ID. Binding the session to another user than before renews
    // its ID (the cookie sent before dies), as OWASP asks on every change of privilege.
    var session = context.GetServerSideSession();
    session.BindToUser(name);
    session.SetString(NameKey, name);
    return SeeOther(context, "/");
});

app.MapPost("/signout", async (HttpContext context, IAntiforgery antiforgery) =>
{
    if (await RejectForgeryAsync(context, antiforgery) is { } rejected)
    {
        return rejected;
    }

    context.GetServerSideSession().Abandon();
    return SeeOther(context, "/");
});

app.MapGet("/sessions", async (HttpContext context, IAntiforgery antiforgery, ISessionManager manager) =>
{
    var session = context.GetServerSideSession();
    if (session.UserId is not { } userId)
    {
        // Never signed in, signed out, or this session was revoked from another device.
        return Html(RenderSignedOut());
    }

    var sessions = await manager.ListForUserAsync(userId, context.RequestAborted);
    var flash = session.GetString(FlashKey);
    if (flash is not null)
    {
        session.Remove(FlashKey);
    }

    var tokens = antiforgery.GetAndStoreTokens(context);
    return Html(RenderSessions(DisplayName(context) ?? userId, session.Id, sessions, flash, tokens));
});

app.MapPost("/sessions/revoke", async (HttpContext context, IAntiforgery antiforgery, ISessionManager manager) =>
{
    if (await RejectForgeryAsync(context, antiforgery) is { } rejected)
    {
        return rejected;
    }

    var session = context.GetServerSideSession();
    if (session.UserId is not { } userId)
    {
        return Results.Text("Sign in first.", statusCode: StatusCodes.Status403Forbidden);
    }

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

    session.SetString(FlashKey, "Signed out the other device. Its next request finds no session.");
    return SeeOther(context, "/sessions");
});

app.MapPost("/sessions/revoke-others", async (HttpContext context, IAntiforgery antiforgery, ISessionManager manager) =>
{
    if (await RejectForgeryAsync(context, antiforgery) is { } rejected)
    {
        return rejected;
    }

    var session = context.GetServerSideSession();
    if (session.UserId is not { } userId)
    {
        return Results.Text("Sign in first.", statusCode: StatusCodes.Status403Forbidden);
    }

    var count = await manager.RevokeAllForUserAsync(userId, session.Id, context.RequestAborted);
    session.SetString(FlashKey, count == 1 ? "Signed out 1 other session." : $"Signed out {count} other sessions.");
    return SeeOther(context, "/sessions");
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
        : Results.Text("The form was not sent by this page (missing or invalid antiforgery token).", statusCode: StatusCodes.Status400BadRequest);

static IResult SeeOther(HttpContext context, string location)
{
    context.Response.Headers.Location = location;
    return Results.StatusCode(StatusCodes.Status303SeeOther);
}

static IResult Html(string page) => Results.Content(page, "text/html; charset=utf-8");

static string? DisplayName(HttpContext context)
{
    var session = context.GetServerSideSession();
    return session.UserId is null ? null : session.GetString(NameKey) ?? session.UserId;
}

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
    body { font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }
    textarea { width: 100%; box-sizing: border-box; }
    code { word-break: break-all; }
    dt { font-weight: bold; }
    #note { white-space: pre-wrap; }
    form.inline { display: inline; }
    table { border-collapse: collapse; width: 100%; }
    th, td { text-align: left; vertical-align: top; padding: .4rem .6rem; border-bottom: 1px solid #ccc; }
    th, td.ip, td.created, td.last-seen { white-space: nowrap; }
    tr.this-device { background: #eef6ee; }
    .badge { background: #2a7a2a; color: #fff; border-radius: .3rem; padding: 0 .4rem; font-size: .85em; white-space: nowrap; }
    .user-agent { display: block; color: #555; font-size: .8em; overflow-wrap: anywhere; }
    .flash { background: #fff6d6; border: 1px solid #e0c860; padding: .4rem .6rem; }
    </style>
    </head>
    <body>
    {{body}}
    </body>
    </html>

    """;

static string RenderHome(IServerSideSession session, string? displayName, int visits, string? note, AntiforgeryTokenSet tokens)
{
    var html = HtmlEncoder.Default;
    var token = TokenField(tokens);
    var noteHtml = note is null ? "<em>No note yet.</em>" : html.Encode(note);
    var account = displayName is null
        ? $"""
          <form id="sign-in" method="post" action="/signin">
          {token}
          <label>Your name <input name="name" required maxlength="{MaxNameLength}" autocomplete="username"></label>
          <button type="submit">Sign in</button>
          </form>
          <p>Signing in binds this session to you and gives it a new ID: the cookie you had before is dead.
          Sign in with the same name in another browser to see both sessions.</p>
          """
        : $"""
          <p id="signed-in-as">Signed in as <strong>{html.Encode(displayName)}</strong>.</p>
          <p><a href="/sessions">Your sessions</a>: every browser signed in as you, where you can sign them out.</p>
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
        <p>Your browser holds only a cookie with a protected random ID. The data lives in a row of a SQLite
        database on the server, keyed by a SHA-256 hash of that ID; the Id above is derived from that hash.</p>
        """);
    return Layout("SessionMiddleware demo", page.ToString());
}

static string RenderSignedOut() => Layout("Your sessions", """
    <h1>Your sessions</h1>
    <p id="signed-out">You are not signed in. If you were, this session was signed out (here or from another device).</p>
    <p><a href="/">Sign in</a></p>
    """);

static string RenderSessions(string displayName, string currentId, IReadOnlyList<SessionInfo> sessions, string? flash, AntiforgeryTokenSet tokens)
{
    var html = HtmlEncoder.Default;
    var token = TokenField(tokens);
    var rows = new StringBuilder();
    foreach (var info in sessions)
    {
        var current = string.Equals(info.Id, currentId, StringComparison.Ordinal);
        var action = current
            ? """<span class="badge">this device</span>"""
            : $"""
              <form class="inline revoke" method="post" action="/sessions/revoke">
              {token}
              <input type="hidden" name="id" value="{html.Encode(info.Id)}">
              <button type="submit">Revoke</button>
              </form>
              """;
        rows.Append(CultureInfo.InvariantCulture, $"""
            <tr data-session-id="{html.Encode(info.Id)}"{(current ? " class=\"this-device\"" : "")}>
            <td class="device">{html.Encode(DescribeDevice(info.UserAgent))}<span class="user-agent">{html.Encode(info.UserAgent ?? "no User-Agent")}</span></td>
            <td class="ip">{html.Encode(info.IpAddress ?? "unknown")}</td>
            <td class="created">{Timestamp(info.CreatedAt)}</td>
            <td class="last-seen">{Timestamp(info.LastAccessAt)}</td>
            <td class="action">{action}</td>
            </tr>

            """);
    }

    var others = sessions.Count(s => !string.Equals(s.Id, currentId, StringComparison.Ordinal));
    var page = new StringBuilder();
    page.Append(CultureInfo.InvariantCulture, $"""
        <h1>Your sessions</h1>
        <p id="signed-in-as">Signed in as <strong>{html.Encode(displayName)}</strong>. <a href="/">Home</a></p>
        {(flash is null ? "" : $"""<p class="flash" id="flash">{html.Encode(flash)}</p>""")}
        <p>Every browser signed in as you, most recently used first. Revoking one ends it on the server at once:
        its next request finds no session, even with the cookie it still holds.</p>
        <table id="sessions">
        <thead><tr><th>Device</th><th>IP address</th><th>Created</th><th>Last seen</th><th></th></tr></thead>
        <tbody>
        {rows}</tbody>
        </table>
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
