// A small page app on server-side sessions: a visit counter, a note kept in the session and a
// "forget me" button, over the embedded SQLite default. Run it from the repository root with
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
const int MaxNoteLength = 2_000;

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
    return Results.Content(RenderPage(context.GetServerSideSession(), visits, note, tokens), "text/html; charset=utf-8");
});

app.MapPost("/note", async (HttpContext context, IAntiforgery antiforgery) =>
{
    if (!await antiforgery.IsRequestValidAsync(context))
    {
        return Results.Text("The form was not sent by this page (missing or invalid antiforgery token).", statusCode: StatusCodes.Status400BadRequest);
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
    if (!await antiforgery.IsRequestValidAsync(context))
    {
        return Results.Text("The form was not sent by this page (missing or invalid antiforgery token).", statusCode: StatusCodes.Status400BadRequest);
    }

    context.Session.Clear();
    return SeeOther(context, "/");
});

await app.StartAsync();
var addresses = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses;
foreach (var address in addresses)
{
    Console.WriteLine($"Demo listening on {address}");
}

await app.WaitForShutdownAsync();

static IResult SeeOther(HttpContext context, string location)
{
    context.Response.Headers.Location = location;
    return Results.StatusCode(StatusCodes.Status303SeeOther);
}

static string RenderPage(IServerSideSession session, int visits, string? note, AntiforgeryTokenSet tokens)
{
    var html = HtmlEncoder.Default;
    var token = $"""<input type="hidden" name="{html.Encode(tokens.FormFieldName)}" value="{html.Encode(tokens.RequestToken ?? "")}">""";
    var noteHtml = note is null ? "<em>No note yet.</em>" : html.Encode(note);
    var page = new StringBuilder();
    page.Append(CultureInfo.InvariantCulture, $$"""
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>SessionMiddleware demo</title>
        <style>
        body { font-family: system-ui, sans-serif; max-width: 42rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }
        textarea { width: 100%; box-sizing: border-box; }
        code { word-break: break-all; }
        dt { font-weight: bold; }
        #note { white-space: pre-wrap; }
        </style>
        </head>
        <body>
        <h1>SessionMiddleware demo</h1>
        <p>You have visited this page <strong id="visits">{{visits}}</strong> time{{(visits == 1 ? "" : "s")}} in this session.</p>

        <h2>Your note</h2>
        <p id="note">{{noteHtml}}</p>
        <form method="post" action="/note">
        {{token}}
        <textarea name="note" rows="4" maxlength="{{MaxNoteLength}}">{{(note is null ? "" : html.Encode(note))}}</textarea>
        <button type="submit">Save note</button>
        </form>

        <h2>Forget me</h2>
        <form method="post" action="/forget">
        {{token}}
        <button type="submit">Forget me</button>
        </form>
        <p>Empties the session: the counter starts again and the note is gone.</p>

        <h2>Your session</h2>
        <dl>
        <dt>Id</dt><dd><code id="session-id">{{html.Encode(session.Id)}}</code></dd>
        <dt>Created</dt><dd id="created-at">{{session.CreatedAt.ToString("u", CultureInfo.InvariantCulture)}}</dd>
        <dt>Last access</dt><dd id="last-access">{{session.LastAccessAt.ToString("u", CultureInfo.InvariantCulture)}}</dd>
        </dl>
        <p>Your browser holds only a cookie with a protected random ID. The data lives in a row of a SQLite
        database on the server, keyed by a SHA-256 hash of that ID; the Id above is derived from that hash.</p>
        </body>
        </html>

        """);
    return page.ToString();
}
