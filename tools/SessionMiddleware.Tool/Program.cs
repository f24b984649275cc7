using System.CommandLine;
using System.Globalization;
using SessionMiddleware;
using SessionMiddleware.Tool;

var connection = new Option<string?>("--connection", "-c") { Description = "The connection string (SQLite 'Data Source=sessions.db', or Npgsql 'Host=…;Database=…').", Recursive = true };
var connectionEnv = new Option<string?>("--connection-env") { Description = "Read the connection string from this environment variable.", Recursive = true };
var provider = new Option<string?>("--provider") { Description = "sqlite or postgresql (default: what the connection string shows; sqlite).", Recursive = true };
provider.AcceptOnlyFromAmong(Providers.Sqlite, Providers.PostgreSql);
var table = new Option<string?>("--table") { Description = "The session table (default: sessions, or the app's settings).", Recursive = true };
var appSettings = new Option<string?>("--appsettings") { Description = "Read the connection string and options from the app's settings as the app does: this file (appsettings.json), appsettings.{Environment}.json beside it, and environment variables.", Recursive = true };
var environment = new Option<string?>("--environment") { Description = "With --appsettings: the app's environment (default ASPNETCORE_ENVIRONMENT, DOTNET_ENVIRONMENT, or Production).", Recursive = true };
var section = new Option<string>("--section") { Description = "The settings section.", DefaultValueFactory = _ => ServerSideSessionOptions.SectionName, Recursive = true };
var idle = new Option<TimeSpan?>("--idle-timeout") { Description = "The app's IdleTimeout, from which migrate derives the expiry of rows it upgrades from schema 1 (default 00:20:00, or the app's settings).", Recursive = true };
var absolute = new Option<TimeSpan?>("--absolute-timeout") { Description = "The app's AbsoluteTimeout, which caps that expiry (default none, or the app's settings).", Recursive = true };
var busy = new Option<TimeSpan?>("--busy-timeout") { Description = "How long to wait for a SQLite lock (default 00:00:05).", Recursive = true };
var verbose = new Option<bool>("--verbose") { Description = "Print the full error, with its stack trace.", Recursive = true };

var root = new RootCommand("dotnet-sessions: operate the SessionMiddleware session table (SQLite or PostgreSQL).")
{
    connection, connectionEnv, provider, table, appSettings, environment, section, idle, absolute, busy, verbose,
};

GlobalOptions Globals(ParseResult p) => new(
    p.GetValue(connection), p.GetValue(connectionEnv), p.GetValue(provider), p.GetValue(table), p.GetValue(appSettings),
    p.GetValue(environment), p.GetValue(section) ?? ServerSideSessionOptions.SectionName, p.GetValue(idle), p.GetValue(absolute), p.GetValue(busy));

void Add(Command command, Func<ParseResult, Target, CancellationToken, Task<int>> run)
{
    command.SetAction((p, token) => Runner.RunAsync(p.GetValue(verbose), () => Target.Resolve(Globals(p)), target => run(p, target, token)));
    root.Add(command);
}

var json = new Option<bool>("--json") { Description = "Write JSON instead of a table." };
var yes = new Option<bool>("--yes", "-y") { Description = "Do not ask for confirmation." };

Add(new Command("migrate", "Create the session table and its indexes, or check an existing one, exactly as the app's startup migration does."),
    (p, t, ct) => Commands.MigrateAsync(t, ct));

var statusJson = new Option<bool>("--json") { Description = "Write JSON instead of text." };
Add(new Command("status", "Schema version, live / expired / user-bound sessions, oldest and newest, database size.") { statusJson },
    (p, t, ct) => Commands.StatusAsync(t, p.GetValue(statusJson), ct));

var dryRun = new Option<bool>("--dry-run") { Description = "Only report how many expired sessions would be deleted." };
var batch = new Option<int>("--batch-size") { Description = "Rows per delete statement.", DefaultValueFactory = _ => 1000 };
Add(new Command("trim", "Delete the expired sessions now, in short batches.") { dryRun, batch },
    (p, t, ct) => Commands.TrimAsync(t, p.GetValue(dryRun), p.GetValue(batch), ct));

var user = new Option<string?>("--user") { Description = "Only this user's sessions." };
var bound = new Option<bool>("--bound") { Description = "Only sessions bound to a user." };
var anonymous = new Option<bool>("--anonymous") { Description = "Only anonymous sessions." };
var createdAfter = new Option<DateTimeOffset?>("--created-after") { Description = "Only sessions created after this time (ISO 8601)." };
var createdBefore = new Option<DateTimeOffset?>("--created-before") { Description = "Only sessions created before this time." };
var activeAfter = new Option<DateTimeOffset?>("--active-after") { Description = "Only sessions last used after this time." };
var activeBefore = new Option<DateTimeOffset?>("--active-before") { Description = "Only sessions last used before this time." };
var limit = new Option<int>("--limit") { Description = "Sessions per page (1 to 1000).", DefaultValueFactory = _ => 50 };
var after = new Option<string?>("--after") { Description = "Continue after a page: the continuation token it printed." };
var all = new Option<bool>("--all") { Description = "Follow every page." };
Add(new Command("list", "List live sessions, newest first.") { user, bound, anonymous, createdAfter, createdBefore, activeAfter, activeBefore, limit, after, all, json },
    (p, t, ct) =>
    {
        if (p.GetValue(bound) && p.GetValue(anonymous))
        {
            throw new UsageException("--bound and --anonymous exclude each other");
        }

        var filter = new SessionFilter
        {
            UserId = p.GetValue(user),
            IsBound = p.GetValue(bound) ? true : p.GetValue(anonymous) ? false : null,
            CreatedAfter = p.GetValue(createdAfter),
            CreatedBefore = p.GetValue(createdBefore),
            LastAccessAfter = p.GetValue(activeAfter),
            LastAccessBefore = p.GetValue(activeBefore),
        };
        return Commands.ListAsync(t, filter, p.GetValue(limit), p.GetValue(after), p.GetValue(all), p.GetValue(json), ct);
    });

var sessionId = new Option<string?>("--session") { Description = "The session's ID (as list shows it)." };
var revokeUser = new Option<string?>("--user") { Description = "End every session of this user." };
var except = new Option<string?>("--except") { Description = "With --user: keep this session." };
Add(new Command("revoke", "End one session (--session ID) or every session of a user (--user X [--except ID]).") { sessionId, revokeUser, except },
    (p, t, ct) => Commands.RevokeAsync(t, p.GetValue(sessionId), p.GetValue(revokeUser), p.GetValue(except), ct));

Add(new Command("clear", "Delete every session (asks first, unless --yes).") { yes },
    (p, t, ct) => Commands.ClearAsync(t, p.GetValue(yes), ct));

var dropYes = new Option<bool>("--yes", "-y") { Description = "Do not ask for confirmation." };
Add(new Command("drop", "Drop the session table and its schema record (asks first, unless --yes; refuses a table that is not a session table).") { dropYes },
    (p, t, ct) => Commands.DropAsync(t, p.GetValue(dropYes), ct));

var result = root.Parse(args);
if (result.Errors.Count > 0)
{
    foreach (var error in result.Errors)
    {
        Console.Error.WriteLine($"dotnet-sessions: {error.Message}");
    }

    Console.Error.WriteLine("dotnet-sessions: see 'dotnet-sessions --help'");
    return ExitCodes.Usage;
}

return await result.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });

namespace SessionMiddleware.Tool
{
    internal sealed record GlobalOptions(
        string? Connection, string? ConnectionEnv, string? Provider, string? Table, string? AppSettings, string? Environment, string Section,
        TimeSpan? IdleTimeout, TimeSpan? AbsoluteTimeout, TimeSpan? BusyTimeout);

    internal static class ExitCodes
    {
        public const int Done = 0;
        public const int Failed = 1;
        public const int Usage = 2;
    }

    internal static class Runner
    {
        /// <summary>Runs a command: an error is one line on stderr (the whole exception with --verbose) and exit code 1, or 2 for bad usage.</summary>
        public static async Task<int> RunAsync(bool verbose, Func<Target> resolve, Func<Target, Task<int>> run)
        {
            try
            {
                return await run(resolve());
            }
            catch (OperationCanceledException)
            {
                Console.Error.WriteLine("dotnet-sessions: cancelled");
                return ExitCodes.Failed;
            }
            catch (Exception ex)
            {
                Console.Error.WriteLine(verbose ? $"dotnet-sessions: {ex}" : $"dotnet-sessions: {OneLine(ex)}");
                return ex is UsageException ? ExitCodes.Usage : ExitCodes.Failed;
            }
        }

        private static string OneLine(Exception ex)
        {
            var message = ex is ToolException ? ex.Message : $"{ex.Message} ({ex.GetType().Name})";
            return message.ReplaceLineEndings(" ");
        }
    }

    internal static class Format
    {
        public static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

        public static string Time(long? unix) => unix is { } u ? Time(DateTimeOffset.FromUnixTimeSeconds(u)) : "-";

        public static string Size(long bytes) => bytes switch
        {
            < 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes} B"),
            < 1024 * 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:0.#} KiB"),
            < 1024L * 1024 * 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0 / 1024:0.#} MiB"),
            _ => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0 / 1024 / 1024:0.##} GiB"),
        };

        public static string Count(long n, string one, string many) => string.Create(CultureInfo.InvariantCulture, $"{n} {(n == 1 ? one : many)}");
    }
}
