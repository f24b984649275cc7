using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// What a new app meets at startup: the session table checked whether or not the app migrates, SQLite path problems
/// named with their fix, a Secure cookie over plain HTTP, and ASP.NET Core's own session registered beside this one.
/// </summary>
public sealed class StartupCheckTests : TempFolderTest
{
    // ---- the schema check ----

    [Test]
    public async Task Start_AfterMigrateServerSideSessionsAsync_Starts()
    {
        await using var app = NewApp($"Data Source={Folder.File("s.db")}");

        await app.MigrateServerSideSessionsAsync();
        await app.StartAsync();

        Assert.That(Logs(app).Any(r => r.Id.Name == "SchemaChecked"), Is.True);
        await app.StopAsync();
    }

    [Test]
    public async Task Start_WithoutMigrating_FailsNamingTheTableTheCallAndTheTool()
    {
        var database = Folder.File("s.db");
        await using var app = NewApp($"Data Source={database}");

        var ex = Assert.ThrowsAsync<InvalidOperationException>(() => app.StartAsync());

        Assert.That(ex!.Message, Does.Contain("\"sessions\" does not exist")
            .And.Contain("await app.MigrateServerSideSessionsAsync()").And.Contain("before 'app.Run()'").And.Contain("dotnet sessions migrate"));
        await Task.CompletedTask;
    }

    [Test]
    public async Task Start_BeforeMigrating_FailsAtStart_SoTheCallMustComeFirst()
    {
        await using var app = NewApp($"Data Source={Folder.File("s.db")}");

        // The wrong order: the check runs at start, before the migration the app meant to run after it.
        Assert.ThrowsAsync<InvalidOperationException>(() => app.StartAsync());
        await app.MigrateServerSideSessionsAsync();

        await using var next = NewApp($"Data Source={Folder.File("s.db")}");
        Assert.That(() => next.StartAsync(), Throws.Nothing, "once migrated, a start without the call passes");
        await next.StopAsync();
    }

    [Test]
    public async Task Start_WhenTheTableWasMigratedElsewhere_StartsWithoutTheCall()
    {
        var connectionString = $"Data Source={Folder.File("s.db")}";
        await using (var operatorApp = NewApp(connectionString))
        {
            await operatorApp.MigrateServerSideSessionsAsync();
        }

        await using var app = NewApp(connectionString);
        await app.StartAsync();

        Assert.That(Logs(app).Any(r => r.Id.Name == "SchemaChecked"), Is.True);
        await app.StopAsync();
    }

    [Test]
    public async Task Start_WithATableOfAnotherShape_FailsNamingTheColumns()
    {
        var database = Folder.File("s.db");
        Execute(database, "CREATE TABLE sessions (id TEXT PRIMARY KEY, value TEXT);");
        await using var app = NewApp($"Data Source={database}");

        var ex = Assert.ThrowsAsync<SessionStoreSchemaException>(() => app.StartAsync());

        Assert.That(ex!.Message, Does.Contain("\"sessions\"").And.Contain("value TEXT"));
        await Task.CompletedTask;
    }

    [Test]
    public async Task Start_WithANewerSchemaVersion_FailsNamingBothVersions()
    {
        var connectionString = $"Data Source={Folder.File("s.db")}";
        await using (var migrated = NewApp(connectionString))
        {
            await migrated.MigrateServerSideSessionsAsync();
        }

        SqliteConnection.ClearAllPools();
        Execute(Folder.File("s.db"), "UPDATE __session_middleware_schema SET version = 99;");
        await using var app = NewApp(connectionString);

        var ex = Assert.ThrowsAsync<SessionStoreSchemaException>(() => app.StartAsync());

        Assert.That(ex!.Message, Does.Contain("schema version 99").And.Contain($"schema version {Storage.SessionTableSchema.Version}"));
        await Task.CompletedTask;
    }

    // ---- SQLite path problems ----

    [Test]
    public async Task Migrate_WithAMissingFolder_FailsNamingThePathAndTheFix()
    {
        var folder = Path.Combine(Folder.Path, "var", "lib", "myapp");
        await using var app = NewApp($"Data Source={Path.Combine(folder, "sessions.db")}");

        var ex = Assert.ThrowsAsync<InvalidOperationException>(() => app.MigrateServerSideSessionsAsync());

        Assert.That(ex!.Message, Does.Contain($"\"{Path.Combine(folder, "sessions.db")}\"")
            .And.Contain($"its folder \"{folder}\" does not exist").And.Contain($"mkdir -p {folder}").And.Contain("ServerSideSessionOptions.ConnectionString"));
    }

    [Test]
    public async Task Start_WithAMissingFolderAndNoMigration_FailsNamingThePath()
    {
        var folder = Path.Combine(Folder.Path, "missing");
        await using var app = NewApp($"Data Source={Path.Combine(folder, "sessions.db")}");

        var ex = Assert.ThrowsAsync<InvalidOperationException>(() => app.StartAsync());

        Assert.That(ex!.Message, Does.Contain($"its folder \"{folder}\" does not exist"));
    }

    [Test]
    public async Task Migrate_WithARelativePath_NamesTheFullPath()
    {
        await using var app = NewApp("Data Source=no-such-folder-of-the-tests/sessions.db");

        var ex = Assert.ThrowsAsync<InvalidOperationException>(() => app.MigrateServerSideSessionsAsync());

        Assert.That(ex!.Message, Does.Contain($"\"{Path.GetFullPath("no-such-folder-of-the-tests/sessions.db")}\""));
    }

    [Test]
    public async Task Migrate_InAnUnwritableFolder_FailsSayingSQLiteCannotCreateTheFile()
    {
        using var mount = ReadOnlyFolder.Mount(Folder.File("ro"), writableFile: null);
        var file = Path.Combine(mount.Path, "sessions.db");
        await using var app = NewApp($"Data Source={file}");

        var ex = Assert.ThrowsAsync<InvalidOperationException>(() => app.MigrateServerSideSessionsAsync());

        Assert.That(ex!.Message, Does.Contain($"\"{file}\"").And.Contain("the file does not exist and its folder").And.Contain("is not writable").And.Contain("write access to the folder"));
    }

    [Test]
    public async Task Migrate_WithAWritableFileInAReadOnlyFolder_FailsNamingTheWalFiles()
    {
        using var mount = ReadOnlyFolder.Mount(Folder.File("ro"), writableFile: "sessions.db");
        var file = Path.Combine(mount.Path, "sessions.db");
        await using var app = NewApp($"Data Source={file}");

        var ex = Assert.ThrowsAsync<InvalidOperationException>(() => app.MigrateServerSideSessionsAsync());

        Assert.That(ex!.Message, Does.Contain($"\"{file}\"").And.Contain("the file is writable but its folder").And.Contain("sessions.db-wal").And.Contain("sessions.db-shm"));
    }

    // The file itself unwritable (a read-only mount: root ignores permission bits). The check asks the kernel, never
    // opens the file (opening and closing it would drop this process's SQLite locks: ProcessTests).
    [Test]
    public async Task Migrate_WithAReadOnlyFile_FailsSayingTheFileIsReadOnly()
    {
        using var mount = ReadOnlyFolder.Mount(Folder.File("ro"), writableFile: null, presentFile: "sessions.db");
        var file = Path.Combine(mount.Path, "sessions.db");
        await using var app = NewApp($"Data Source={file}");

        var ex = Assert.ThrowsAsync<InvalidOperationException>(() => app.MigrateServerSideSessionsAsync());

        Assert.That(ex!.Message, Does.Contain($"\"{file}\"").And.Contain("the file is read-only for the app's user"));
    }

    // ---- Secure cookie over plain HTTP ----

    [Test]
    public async Task SecureCookieOnPlainHttp_LogsOneWarningNamingTheOption()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o => o.Cookie.SecurePolicy = CookieSecurePolicy.Always);

        for (var i = 0; i < 3; i++)
        {
            await host.CreateBrowser().GetTextAsync("/set?key=a&value=1");
        }

        var warnings = host.Logs.GetSnapshot().Where(r => r.Id.Name == "SecureCookieOverHttp").ToList();
        Assert.That(warnings, Has.Count.EqualTo(1), "once, not per request");
        Assert.That(warnings[0].Level, Is.EqualTo(LogLevel.Warning));
        Assert.That(warnings[0].Message, Does.Contain("ServerSideSessionOptions.Cookie.SecurePolicy is Always").And.Contain("SameAsRequest"));
    }

    [Test]
    public async Task SecureCookieOnHttps_OrDefaultCookieOnHttp_LogsNoWarning()
    {
        await using (var https = await SessionTestHost.StartAsync(Folder.Path, o => o.Cookie.SecurePolicy = CookieSecurePolicy.Always, https: true))
        {
            await https.CreateBrowser().GetTextAsync("/set?key=a&value=1");
            Assert.That(https.Logs.GetSnapshot().Any(r => r.Id.Name == "SecureCookieOverHttp"), Is.False);
        }

        await using var http = await SessionTestHost.StartAsync(Folder.Path);
        await http.CreateBrowser().GetTextAsync("/set?key=a&value=1");
        Assert.That(http.Logs.GetSnapshot().Any(r => r.Id.Name == "SecureCookieOverHttp"), Is.False);
    }

    // ---- ASP.NET Core's own session beside this one ----

    [Test]
    public async Task AddSessionBeside_LogsAStartupWarning()
    {
        await using var host = await SessionTestHost.StartAsync(
            Folder.Path,
            services: s => s.Services.AddDistributedMemoryCache().AddSession(),
            endpoints: app => app.UseSession());

        var warning = host.Logs.GetSnapshot().Single(r => r.Id.Name == "AspNetCoreSessionAlsoRegistered");
        Assert.That(warning.Level, Is.EqualTo(LogLevel.Warning));
        Assert.That(warning.Message, Does.Contain("AddSession()").And.Contain("UseSession()").And.Contain("HttpContext.Session"));
    }

    [Test]
    public async Task WithoutAddSession_LogsNoSuchWarning()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path);

        Assert.That(host.Logs.GetSnapshot().Any(r => r.Id.Name == "AspNetCoreSessionAlsoRegistered"), Is.False);
    }

    // ---- helpers ----

    private static WebApplication NewApp(string connectionString)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        builder.Logging.AddFakeLogging();
        builder.Services.AddServerSideSessions(o => o.ConnectionString = connectionString);
        var app = builder.Build();
        app.UseServerSideSessions();
        return app;
    }

    private static IReadOnlyList<FakeLogRecord> Logs(WebApplication app) => app.Services.GetRequiredService<FakeLogCollector>().GetSnapshot();

    private static void Execute(string database, string sql)
    {
        using var connection = new SqliteConnection($"Data Source={database};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    /// <summary>
    /// A tmpfs mounted read-only (the tests run as root, for whom permission bits do not stop writes), optionally with
    /// one writable file bind-mounted into it from a writable folder, or one file left in it, read-only with the rest.
    /// </summary>
    private sealed class ReadOnlyFolder : IDisposable
    {
        private readonly string? _boundFile;

        private ReadOnlyFolder(string path, string? boundFile)
        {
            Path = path;
            _boundFile = boundFile;
        }

        public string Path { get; }

        public static ReadOnlyFolder Mount(string path, string? writableFile, string? presentFile = null)
        {
            Directory.CreateDirectory(path);
            TinyDisk.Run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", path);
            if (presentFile is not null)
            {
                // A file that is there but, once the folder is remounted read-only, cannot be written.
                File.WriteAllBytes(System.IO.Path.Combine(path, presentFile), []);
            }

            string? bound = null;
            if (writableFile is not null)
            {
                var source = path + ".source-" + writableFile;
                File.WriteAllBytes(source, []);
                bound = System.IO.Path.Combine(path, writableFile);
                File.WriteAllBytes(bound, []);
                TinyDisk.Run("mount", "--bind", source, bound);
            }

            TinyDisk.Run("mount", "-o", "remount,ro", path);
            return new ReadOnlyFolder(path, bound);
        }

        public void Dispose()
        {
            SqliteConnection.ClearAllPools();
            if (_boundFile is not null)
            {
                TinyDisk.Run("umount", "-l", _boundFile);
            }

            TinyDisk.Run("umount", "-l", Path);
        }
    }
}
