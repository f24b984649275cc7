using System.Data.Common;
using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Dapper;
using Microsoft.Data.Sqlite;
using Npgsql;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// The built dotnet-sessions tool run as a process against a real SQLite file and the test PostgreSQL server: each
/// command, its output and exit code, and the failures an operator meets (missing file, table of another shape,
/// wrong connection string, locked database, no --yes without a terminal).
/// </summary>
[Category("Process")]
public sealed class ToolTests : TempFolderTest
{
    private static readonly long Now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    [Test]
    public async Task Sqlite_EveryCommand_DoesItsJob_WithExitCodeZero()
    {
        var cs = $"Data Source={Folder.File("app.db")}";
        await EveryCommandAsync(cs, () => new SqliteConnection(cs));
    }

    [Test]
    public async Task PostgreSql_EveryCommand_DoesItsJob_WithExitCodeZero()
    {
        var server = await PostgresServer.SharedAsync();
        var cs = await server.CreateDatabaseAsync();
        try
        {
            await EveryCommandAsync(cs, () => new NpgsqlConnection(cs));
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await server.DropDatabaseAsync(cs);
        }
    }

    [Test]
    public async Task PostgreSql_OnATableTheDbaHashPartitioned_MigrateAndTrimWork_AndStatusCountsThePartitionsSize()
    {
        var server = await PostgresServer.SharedAsync();
        var cs = await server.CreateDatabaseAsync();
        try
        {
            await using (var connection = new NpgsqlConnection(cs))
            {
                await connection.ExecuteAsync(StoreBackend.PartitionedSessionsTable);
                var migrate = await RunAsync("migrate", "-c", cs);
                Assert.That(migrate.ExitCode, Is.Zero, migrate.Output);
                for (var i = 0; i < 40; i++)
                {
                    await connection.ExecuteAsync(
                        "INSERT INTO sessions (id, user_id, data, created_at, last_access, version, ip, user_agent, expires_at) VALUES (@Id, NULL, @Data, @Now, @Now, 1, NULL, NULL, @ExpiresAt)",
                        new { Id = RandomNumberGenerator.GetBytes(32), Data = new byte[100], Now, ExpiresAt = i < 10 ? Now - 60 : Now + 3600 });
                }
            }

            var status = await RunAsync("status", "-c", cs, "--json");
            var trim = await RunAsync("trim", "-c", cs);

            Assert.Multiple(() =>
            {
                Assert.That(status.ExitCode, Is.Zero, status.Output);
                var json = JsonDocument.Parse(status.StdOut).RootElement;
                Assert.That(json.GetProperty("live").GetInt64(), Is.EqualTo(30));
                Assert.That(json.GetProperty("sizeBytes").GetInt64(), Is.GreaterThan(0), "the partitions' size, not the empty parent's");
                Assert.That(trim.ExitCode, Is.Zero, trim.Output);
                Assert.That(trim.StdOut, Does.Contain("deleted 10 expired sessions"));
            });
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await server.DropDatabaseAsync(cs);
        }
    }

    [Test]
    public async Task Migrate_OfASchema3Table_UpgradesIt_KeepsItsRows_AndSaysSo()
    {
        var cs = $"Data Source={Folder.File("v3.db")}";
        Assert.That((await RunAsync("migrate", "-c", cs)).ExitCode, Is.Zero);
        await using (var connection = new SqliteConnection(cs))
        {
            // Back to schema 3: without the sign-in columns and their indexes, version 3 recorded, one row.
            await connection.ExecuteAsync(
                "DROP INDEX ix_sessions_idp_sid; DROP INDEX ix_sessions_idp_subject; " +
                string.Concat(new[] { "signed_in_at", "idp_issuer", "idp_sid", "idp_subject", "credential_stamp" }.Select(c => $"ALTER TABLE sessions DROP COLUMN {c}; ")) +
                "UPDATE __session_middleware_schema SET version = 3; " +
                "INSERT INTO sessions (id, user_id, data, created_at, last_access, version, expires_at) VALUES (x'01', 'u', x'01', 1, 1, 1, 4102444800);");
        }

        var status = await RunAsync("status", "-c", cs);
        var migrate = await RunAsync("migrate", "-c", cs);
        var again = await RunAsync("migrate", "-c", cs);

        Assert.Multiple(async () =>
        {
            Assert.That(status.ExitCode, Is.Not.Zero, "an older table: status names migrate");
            Assert.That(status.StdErr, Does.Contain("schema version 2 or 3").And.Contain("migrate"));
            Assert.That(migrate.ExitCode, Is.Zero, migrate.Output);
            Assert.That(migrate.StdOut, Does.Contain("upgraded table \"sessions\"").And.Contain("from schema version 3 to 4"));
            Assert.That(again.StdOut, Does.Contain("is up to date (schema version 4)"));
            await using var connection = new SqliteConnection(cs);
            Assert.That(await connection.ExecuteScalarAsync<long>("SELECT count(*) FROM sessions"), Is.EqualTo(1), "the row is kept");
        });
    }

    [Test]
    public async Task TheConnection_ComesFromTheAppsSettingsFile_OrFromAnEnvironmentVariable()
    {
        // The app's settings give a path relative to the app's folder and another table name.
        var app = Path.Combine(Folder.Path, "app");
        Directory.CreateDirectory(app);
        var settings = Path.Combine(app, "appsettings.json");
        await File.WriteAllTextAsync(settings, """{ "ServerSideSessions": { "ConnectionString": "Data Source=data.db", "TableName": "app_sessions" } }""");

        var migrate = await RunAsync("migrate", "--appsettings", settings);
        var fromFile = await RunAsync("status", "--appsettings", settings, "--json");
        var fromEnv = await RunAsync(
            new Dictionary<string, string> { ["SESSIONS_DB"] = $"Data Source={Path.Combine(app, "data.db")}" },
            "status", "--connection-env", "SESSIONS_DB", "--table", "app_sessions", "--json");
        var unset = await RunAsync("status", "--connection-env", "SESSIONS_DB_NOT_SET");

        Assert.Multiple(() =>
        {
            Assert.That(migrate.ExitCode, Is.Zero, migrate.Output);
            Assert.That(File.Exists(Path.Combine(app, "data.db")), Is.True, "relative to the settings file's folder");
            Assert.That(fromFile.ExitCode, Is.Zero, fromFile.Output);
            Assert.That(JsonDocument.Parse(fromFile.StdOut).RootElement.GetProperty("live").GetInt64(), Is.Zero);
            Assert.That(fromEnv.ExitCode, Is.Zero, fromEnv.Output);
            Assert.That(unset.ExitCode, Is.Not.Zero);
            Assert.That(unset.StdErr, Does.Contain("SESSIONS_DB_NOT_SET"));
        });
    }

    [Test]
    public async Task AppSettings_WithTheReadmesPostgreSqlWiring_ConnectionStringsSessions_IsTheDatabase_AndNoSqliteFileIsCreated()
    {
        var server = await PostgresServer.SharedAsync();
        var cs = await server.CreateDatabaseAsync();
        try
        {
            var app = AppFolder();
            var settings = await WriteSettingsAsync(app, "appsettings.json", new
            {
                ConnectionStrings = new { Sessions = cs },
                ServerSideSessions = new { IdleTimeout = "00:30:00" },
            });

            var migrate = await RunInAsync(app, [], "migrate", "--appsettings", settings);
            var status = await RunInAsync(app, [], "status", "--appsettings", settings, "--json");

            Assert.Multiple(() =>
            {
                Assert.That(migrate.ExitCode, Is.Zero, migrate.Output);
                Assert.That(migrate.StdOut, Does.Contain("created table \"sessions\" in PostgreSQL database"), migrate.Output);
                Assert.That(status.ExitCode, Is.Zero, status.Output);
                Assert.That(Directory.GetFiles(app, "*.db*"), Is.Empty, "no SQLite file beside the app, where the tool ran");
            });
            Assert.That(JsonDocument.Parse(status.StdOut).RootElement.GetProperty("provider").GetString(), Is.EqualTo("postgresql"));
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await server.DropDatabaseAsync(cs);
        }
    }

    [Test]
    public async Task AppSettings_ThatNameNoConnectionString_ExitTwo_NamingTheFilesAndKeysLookedFor_AndCreateNothing()
    {
        var app = AppFolder();
        var settings = await WriteSettingsAsync(app, "appsettings.json", new { ServerSideSessions = new { IdleTimeout = "00:30:00" } });

        foreach (var command in new[] { "migrate", "status" })
        {
            var result = await RunInAsync(app, [], command, "--appsettings", settings);
            Assert.Multiple(() =>
            {
                Assert.That(result.ExitCode, Is.EqualTo(2), result.Output);
                Assert.That(result.StdErr.Trim(), Does.Not.Contain('\n'), "one line");
                Assert.That(result.StdErr, Does.Contain(settings).And.Contain(Path.Combine(app, "appsettings.Production.json")), "the files read");
                Assert.That(result.StdErr, Does.Contain("ServerSideSessions:ConnectionString").And.Contain("ConnectionStrings:Sessions"), "the keys");
                Assert.That(result.StdErr, Does.Contain("ServerSideSessions__ConnectionString").And.Contain("ConnectionStrings__Sessions"), "the environment variables");
            });
        }

        Assert.That(Directory.GetFiles(app, "*.db*"), Is.Empty, "no SQLite file the settings did not name");
    }

    [Test]
    public async Task AppSettings_TheEnvironmentsFile_AndEnvironmentVariables_OverrideAppsettingsJson_AsInTheApp()
    {
        var app = AppFolder();
        var elsewhere = Path.Combine(Folder.Path, "elsewhere");
        Directory.CreateDirectory(elsewhere);
        var settings = await WriteSettingsAsync(app, "appsettings.json", new { ServerSideSessions = new { ConnectionString = "Data Source=base.db", TableName = "base_sessions" } });
        await WriteSettingsAsync(app, "appsettings.Staging.json", new { ServerSideSessions = new { ConnectionString = "Data Source=staging.db" } });
        await WriteSettingsAsync(app, "appsettings.Development.json", new { ServerSideSessions = new { ConnectionString = "Data Source=dev.db" } });

        var staging = await RunInAsync(elsewhere, new() { ["ASPNETCORE_ENVIRONMENT"] = "Staging" }, "migrate", "--appsettings", settings);
        var development = await RunInAsync(elsewhere, new() { ["DOTNET_ENVIRONMENT"] = "Staging" }, "migrate", "--appsettings", settings, "--environment", "Development");
        var fromVariable = await RunInAsync(
            elsewhere,
            new() { ["DOTNET_ENVIRONMENT"] = "Staging", ["ServerSideSessions__TableName"] = "env_sessions" },
            "migrate", "--appsettings", settings);

        Assert.Multiple(() =>
        {
            Assert.That(staging.ExitCode, Is.Zero, staging.Output);
            Assert.That(staging.StdOut, Does.Contain($"created table \"base_sessions\" in {Path.Combine(app, "staging.db")}"), staging.Output);
            Assert.That(development.ExitCode, Is.Zero, development.Output);
            Assert.That(development.StdOut, Does.Contain($"created table \"base_sessions\" in {Path.Combine(app, "dev.db")}"), "--environment before the variables");
            Assert.That(fromVariable.ExitCode, Is.Zero, fromVariable.Output);
            Assert.That(fromVariable.StdOut, Does.Contain($"created table \"env_sessions\" in {Path.Combine(app, "staging.db")}"), fromVariable.Output);
            Assert.That(File.Exists(Path.Combine(app, "base.db")), Is.False, "appsettings.json's file is overridden");
            Assert.That(Directory.GetFiles(elsewhere), Is.Empty);
        });
    }

    [Test]
    public async Task AppSettings_WithBothConnectionKeysSetDifferently_ExitTwo_NamingBoth_AndWithTheSameValue_Work()
    {
        var app = AppFolder();
        var settings = await WriteSettingsAsync(app, "appsettings.json", new { ServerSideSessions = new { ConnectionString = "Data Source=a.db" } });

        var differ = await RunInAsync(app, new() { ["ConnectionStrings__Sessions"] = "Data Source=b.db" }, "migrate", "--appsettings", settings);
        var same = await RunInAsync(app, new() { ["ConnectionStrings__Sessions"] = "Data Source=a.db" }, "migrate", "--appsettings", settings);

        Assert.Multiple(() =>
        {
            Assert.That(differ.ExitCode, Is.EqualTo(2), differ.Output);
            Assert.That(differ.StdErr, Does.Contain("ServerSideSessions:ConnectionString").And.Contain(settings), "the first key and where it is set");
            Assert.That(differ.StdErr, Does.Contain("ConnectionStrings:Sessions").And.Contain("ConnectionStrings__Sessions"), "the second key and where it is set");
            Assert.That(same.ExitCode, Is.Zero, same.Output);
            Assert.That(File.Exists(Path.Combine(app, "a.db")), Is.True);
            Assert.That(File.Exists(Path.Combine(app, "b.db")), Is.False);
        });
    }

    [Test]
    public async Task AppSettings_TheAppsTimeouts_AreAccepted_AndStatusPrintsTheAppsValues()
    {
        // Settings the app accepts: a 10-second idle timeout with a 2-second touch interval.
        var app = AppFolder();
        var settings = await WriteSettingsAsync(app, "appsettings.json", new
        {
            ServerSideSessions = new { ConnectionString = "Data Source=app.db", IdleTimeout = "00:00:10", TouchInterval = "00:00:02", AbsoluteTimeout = "01:00:00" },
        });

        var migrate = await RunInAsync(app, [], "migrate", "--appsettings", settings);
        var status = await RunInAsync(app, [], "status", "--appsettings", settings);
        var json = await RunInAsync(app, [], "status", "--appsettings", settings, "--json");
        var shortIdle = await RunAsync("status", "-c", $"Data Source={Path.Combine(app, "app.db")}", "--idle-timeout", "00:00:30");

        Assert.Multiple(() =>
        {
            Assert.That(migrate.ExitCode, Is.Zero, migrate.Output);
            Assert.That(status.ExitCode, Is.Zero, status.Output);
            Assert.That(status.StdOut, Does.Contain("idle 00:00:10, absolute 01:00:00"), status.Output);
            Assert.That(json.ExitCode, Is.Zero, json.Output);
            Assert.That(shortIdle.ExitCode, Is.Zero, "an --idle-timeout under the default touch interval: " + shortIdle.Output);
            Assert.That(shortIdle.StdOut, Does.Contain("idle 00:00:30, absolute none"), shortIdle.Output);
        });
        var root = JsonDocument.Parse(json.StdOut).RootElement;
        Assert.Multiple(() =>
        {
            Assert.That(root.GetProperty("idleTimeout").GetString(), Is.EqualTo("00:00:10"));
            Assert.That(root.GetProperty("absoluteTimeout").GetString(), Is.EqualTo("01:00:00"));
        });
    }

    [Test]
    public async Task Sqlite_EveryCommand_OnATableThatIsNotASessionTable_Refuses_ExitTwo_AndTheRowSurvives()
    {
        var cs = $"Data Source={Folder.File("app.db")}";
        await NotASessionTableAsync(
            cs,
            () => new SqliteConnection(cs),
            """CREATE TABLE "AspNetUsers" ("Id" TEXT NOT NULL PRIMARY KEY, "UserName" TEXT NULL, "NormalizedUserName" TEXT NULL, "Email" TEXT NULL, "PasswordHash" TEXT NULL, "SecurityStamp" TEXT NULL, "LockoutEnd" TEXT NULL, "AccessFailedCount" INTEGER NOT NULL)""");
    }

    [Test]
    public async Task PostgreSql_EveryCommand_OnATableThatIsNotASessionTable_Refuses_ExitTwo_AndTheRowSurvives()
    {
        var server = await PostgresServer.SharedAsync();
        var cs = await server.CreateDatabaseAsync();
        try
        {
            await NotASessionTableAsync(
                cs,
                () => new NpgsqlConnection(cs),
                """CREATE TABLE "AspNetUsers" ("Id" text NOT NULL PRIMARY KEY, "UserName" varchar(256), "NormalizedUserName" varchar(256), "Email" varchar(256), "PasswordHash" text, "SecurityStamp" text, "LockoutEnd" timestamptz, "AccessFailedCount" integer NOT NULL)""");
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await server.DropDatabaseAsync(cs);
        }
    }

    /// <summary>An Identity users table with one user: every command, pointed at it, refuses and the user is kept.</summary>
    private static async Task NotASessionTableAsync(string cs, Func<DbConnection> connect, string createUsers)
    {
        await using (var connection = connect())
        {
            await connection.ExecuteAsync(createUsers);
            await connection.ExecuteAsync("""INSERT INTO "AspNetUsers" ("Id", "UserName", "AccessFailedCount") VALUES ('u1', 'alice@example.com', 0)""");
        }

        var id = new string('a', 64);
        string[][] commands =
        [
            ["migrate"], ["status"], ["status", "--json"], ["trim"], ["trim", "--dry-run"], ["list"], ["revoke", "--user", "u1"],
            ["revoke", "--session", id], ["clear", "--yes"], ["drop", "--yes"],
        ];
        foreach (var command in commands)
        {
            var result = await RunAsync([.. command, "-c", cs, "--table", "AspNetUsers"]);
            Assert.Multiple(() =>
            {
                var name = string.Join(' ', command);
                Assert.That(result.ExitCode, Is.EqualTo(2), $"{name}: {result.Output}");
                Assert.That(result.StdErr.Trim(), Does.StartWith($"dotnet-sessions: refusing to {command[0]} \"AspNetUsers\": it is not a SessionMiddleware session table").And.Not.Contain('\n'), name);
                Assert.That(result.StdErr, Does.Contain("it lacks").And.Contain("expires_at"), $"{name}: what it lacks");
                Assert.That(result.StdOut, Is.Empty, name);
            });
        }

        await using var check = connect();
        Assert.That(await check.ExecuteScalarAsync<long>("""SELECT count(*) FROM "AspNetUsers" """), Is.EqualTo(1), "the user is kept");
    }

    private string AppFolder()
    {
        var app = Path.Combine(Folder.Path, "app");
        Directory.CreateDirectory(app);
        return app;
    }

    private static async Task<string> WriteSettingsAsync(string folder, string name, object settings)
    {
        var path = Path.Combine(folder, name);
        await File.WriteAllTextAsync(path, JsonSerializer.Serialize(settings));
        return path;
    }

    private static async Task EveryCommandAsync(string cs, Func<DbConnection> connect)
    {
        var migrate = await RunAsync("migrate", "-c", cs);
        Assert.That(migrate.ExitCode, Is.Zero, migrate.Output);
        Assert.That(migrate.StdOut, Does.Contain("created table \"sessions\""));
        Assert.That((await RunAsync("migrate", "-c", cs)).StdOut, Does.Contain("up to date"));

        await using (var connection = connect())
        {
            await connection.OpenAsync();
            await InsertAsync(connection, "alice", Now - 60);
            await InsertAsync(connection, "alice", Now - 30);
            await InsertAsync(connection, null, Now - 10);
            await InsertAsync(connection, "bob", Now - 5);
            await InsertAsync(connection, "old", Now - 3600); // expired (idle 20 minutes)
            await InsertAsync(connection, null, Now - 7200);
        }

        var status = await RunAsync("status", "-c", cs, "--json");
        Assert.That(status.ExitCode, Is.Zero, status.Output);
        using (var json = JsonDocument.Parse(status.StdOut))
        {
            Assert.Multiple(() =>
            {
                Assert.That(json.RootElement.GetProperty("live").GetInt64(), Is.EqualTo(4));
                Assert.That(json.RootElement.GetProperty("expired").GetInt64(), Is.EqualTo(2));
                Assert.That(json.RootElement.GetProperty("userBound").GetInt64(), Is.EqualTo(3));
                Assert.That(json.RootElement.GetProperty("schemaVersion").GetInt32(), Is.EqualTo(SessionMiddleware.Storage.SessionTableSchema.Version));
                Assert.That(json.RootElement.GetProperty("sizeBytes").GetInt64(), Is.Positive);
            });
        }

        Assert.That((await RunAsync("status", "-c", cs)).StdOut, Does.Contain("4 live (3 bound to a user), 2 expired"));

        var page1 = await RunAsync("list", "-c", cs, "--limit", "3", "--json");
        Assert.That(page1.ExitCode, Is.Zero, page1.Output);
        using var list1 = JsonDocument.Parse(page1.StdOut);
        var token = list1.RootElement.GetProperty("continuationToken").GetString();
        var page2 = await RunAsync("list", "-c", cs, "--limit", "3", "--after", token!, "--json");
        using var list2 = JsonDocument.Parse(page2.StdOut);
        var ids = list1.RootElement.GetProperty("sessions").EnumerateArray().Concat(list2.RootElement.GetProperty("sessions").EnumerateArray())
            .Select(s => s.GetProperty("id").GetString()!).ToList();
        var aliceTable = await RunAsync("list", "-c", cs, "--user", "alice");
        var anonymous = JsonDocument.Parse((await RunAsync("list", "-c", cs, "--anonymous", "--json")).StdOut);
        Assert.Multiple(() =>
        {
            Assert.That(ids, Has.Count.EqualTo(4).And.Unique);
            Assert.That(list2.RootElement.GetProperty("continuationToken").ValueKind, Is.EqualTo(JsonValueKind.Null));
            Assert.That(aliceTable.StdOut, Does.StartWith("ID").And.Contain("2 sessions"));
            Assert.That(anonymous.RootElement.GetProperty("sessions").GetArrayLength(), Is.EqualTo(1));
        });

        var dryRun = await RunAsync("trim", "-c", cs, "--dry-run");
        var trim = await RunAsync("trim", "-c", cs, "--batch-size", "1");
        Assert.Multiple(() =>
        {
            Assert.That(dryRun.StdOut, Does.Contain("2 expired sessions would be deleted"));
            Assert.That(trim.ExitCode, Is.Zero, trim.Output);
            Assert.That(trim.StdOut, Does.Contain("deleted 2 expired sessions in 2 batches"), "each batch listed, then deleted; the empty listing after them is no batch");
        });

        var revokeOne = await RunAsync("revoke", "-c", cs, "--session", ids[0]);
        var revokeAlice = await RunAsync("revoke", "-c", cs, "--user", "alice");
        Assert.Multiple(() =>
        {
            Assert.That(revokeOne.StdOut.Trim(), Is.EqualTo("1 session ended"), revokeOne.Output);
            Assert.That(revokeAlice.StdOut.Trim(), Is.EqualTo("2 sessions ended"), revokeAlice.Output);
        });

        var clear = await RunAsync("clear", "-c", cs, "--yes");
        Assert.That(clear.StdOut.Trim(), Is.EqualTo("deleted 1 session"), clear.Output);
        var drop = await RunAsync("drop", "-c", cs, "--yes");
        Assert.That(drop.ExitCode, Is.Zero, drop.Output);
        var after = await RunAsync("status", "-c", cs);
        Assert.Multiple(() =>
        {
            Assert.That(after.ExitCode, Is.EqualTo(1));
            Assert.That(after.StdErr, Does.Contain("does not exist"));
        });
    }

    [Test]
    public async Task ReadCommands_OnAMissingFile_FailWithoutCreatingIt()
    {
        var path = Folder.File("typo.db");
        foreach (var command in new[] { "status", "list", "trim", "clear", "drop" })
        {
            var result = await RunAsync(command is "clear" or "drop" ? [command, "-c", $"Data Source={path}", "--yes"] : [command, "-c", $"Data Source={path}"]);
            Assert.Multiple(() =>
            {
                Assert.That(result.ExitCode, Is.EqualTo(1), command);
                Assert.That(result.StdErr.Trim(), Does.StartWith("dotnet-sessions: no SQLite database at " + path).And.Not.Contain('\n'), command);
            });
        }

        Assert.That(File.Exists(path), Is.False);
    }

    [Test]
    public async Task BadUsage_ExitsTwo_AndAWrongConnectionString_ExitsOne_EachAsOneLine()
    {
        var db = Folder.File("app.db");
        Assert.That((await RunAsync("migrate", "-c", $"Data Source={db}")).ExitCode, Is.Zero);

        var noCommand = await RunAsync();
        var unknown = await RunAsync("frobnicate");
        var noConnection = await RunAsync("status");
        var revokeNeither = await RunAsync("revoke", "-c", $"Data Source={db}");
        var badId = await RunAsync("revoke", "-c", $"Data Source={db}", "--session", "nope");
        var noSqliteFile = await RunAsync("status", "-c", "Mode=ReadOnly");
        var noServer = await RunAsync("status", "-c", "Host=127.0.0.1;Port=1;Username=x;Database=x;Timeout=2");
        Assert.Multiple(() =>
        {
            foreach (var usage in new[] { noCommand, unknown, noConnection, revokeNeither, badId })
            {
                Assert.That(usage.ExitCode, Is.EqualTo(2), usage.Output);
            }

            Assert.That(noSqliteFile.ExitCode, Is.EqualTo(1), noSqliteFile.Output);
            Assert.That(noSqliteFile.StdErr, Does.Contain("names no SQLite file"));
            Assert.That(noServer.ExitCode, Is.EqualTo(1), noServer.Output);
            Assert.That(noServer.StdErr.Trim(), Does.Not.Contain('\n').And.Not.Contain(" at "), "one line, no stack trace");
        });

        var verbose = await RunAsync("status", "-c", "Host=127.0.0.1;Port=1;Username=x;Database=x;Timeout=2", "--verbose");
        Assert.That(verbose.StdErr, Does.Contain(" at "), "--verbose prints the stack trace");
    }

    [Test]
    public async Task ClearAndDrop_WithoutYes_WhenStdinIsNotATerminal_RefuseAndChangeNothing()
    {
        var db = Folder.File("app.db");
        var cs = $"Data Source={db}";
        await RunAsync("migrate", "-c", cs);
        await using (var connection = new SqliteConnection(cs))
        {
            await InsertAsync(connection, "alice", Now);
        }

        var clear = await RunAsync("clear", "-c", cs);
        var drop = await RunAsync("drop", "-c", cs);
        var status = await RunAsync("status", "-c", cs);
        Assert.Multiple(() =>
        {
            Assert.That(clear.ExitCode, Is.EqualTo(2));
            Assert.That(clear.StdErr, Does.Contain("needs --yes"));
            Assert.That(drop.ExitCode, Is.EqualTo(2));
            Assert.That(status.StdOut, Does.Contain("1 live"));
        });
    }

    [Test]
    public async Task Clear_OnALockedDatabase_FailsAfterTheBusyTimeout_AsOneLine()
    {
        var cs = $"Data Source={Folder.File("app.db")}";
        await RunAsync("migrate", "-c", cs);
        await using var holder = new SqliteConnection(cs);
        await holder.OpenAsync();
        await holder.ExecuteAsync("BEGIN EXCLUSIVE");

        var clear = await RunAsync("clear", "-c", cs, "--yes", "--busy-timeout", "00:00:01");

        await holder.ExecuteAsync("ROLLBACK");
        Assert.Multiple(() =>
        {
            Assert.That(clear.ExitCode, Is.EqualTo(1), clear.Output);
            Assert.That(clear.StdErr.Trim(), Does.Contain("locked").And.Not.Contain('\n'));
        });
    }

    [Test]
    public async Task Trim_WhileAnAppServesRequestsOnTheSameFile_TheAppAnswersEveryRequest()
    {
        var db = Folder.File("shared.db");
        await using var app = await ChildHost.StartAsync(db, Folder.File("keys"));
        await using (var connection = new SqliteConnection($"Data Source={db}"))
        {
            await connection.OpenAsync();
            await using var transaction = await connection.BeginTransactionAsync();
            for (var i = 0; i < 20_000; i++)
            {
                await InsertAsync(connection, null, Now - 7200, transaction);
            }

            await transaction.CommitAsync();
        }

        using var client = new HttpClient { BaseAddress = app.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        var errors = 0;
        var answered = 0;
        using var stop = new CancellationTokenSource();
        var load = Task.Run(async () =>
        {
            var n = 0;
            while (!stop.IsCancellationRequested)
            {
                using var response = await client.GetAsync($"/set?key=k{n % 50}&value={n++}");
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    answered++;
                }
                else
                {
                    errors++;
                }
            }
        });

        var trim = await RunAsync("trim", "-c", $"Data Source={db}", "--batch-size", "500");
        await stop.CancelAsync();
        await load;

        TestContext.Out.WriteLine($"trim: {trim.StdOut.Trim()}; app: {answered} answered, {errors} errors");
        Assert.Multiple(() =>
        {
            Assert.That(trim.ExitCode, Is.Zero, trim.Output);
            Assert.That(trim.StdOut, Does.Contain("deleted 20000 expired sessions"));
            Assert.That(errors, Is.Zero);
            Assert.That(answered, Is.Positive);
        });
    }

    private static Task InsertAsync(DbConnection connection, string? user, long lastAccess, DbTransaction? transaction = null) =>
        connection.ExecuteAsync(
            "INSERT INTO sessions (id, user_id, data, created_at, last_access, version, ip, user_agent, expires_at) VALUES (@Id, @User, @Data, @At, @At, 1, '10.0.0.1', 'curl', @ExpiresAt)",
            new { Id = RandomNumberGenerator.GetBytes(32), User = user, Data = new byte[] { 1 }, At = lastAccess, ExpiresAt = lastAccess + (20 * 60) },
            transaction);

    private sealed record ToolResult(int ExitCode, string StdOut, string StdErr)
    {
        public string Output => $"exit {ExitCode}\nstdout:\n{StdOut}\nstderr:\n{StdErr}";
    }

    /// <summary>Runs the built tool with stdin redirected (not a terminal), bounded to two minutes.</summary>
    private static Task<ToolResult> RunAsync(params string[] args) => RunAsync(new Dictionary<string, string>(), args);

    private static Task<ToolResult> RunAsync(Dictionary<string, string> environment, params string[] args) =>
        RunInAsync(workingDirectory: null, environment, args);

    /// <summary>
    /// Runs the tool in <paramref name="workingDirectory"/>, with none of the runner's environment names and settings
    /// variables (the app's settings come only from <paramref name="environment"/>).
    /// </summary>
    private static async Task<ToolResult> RunInAsync(string? workingDirectory, Dictionary<string, string> environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? "",
        };
        foreach (var name in start.Environment.Keys.Where(k =>
            k is "ASPNETCORE_ENVIRONMENT" or "DOTNET_ENVIRONMENT" ||
            k.StartsWith("ServerSideSessions__", StringComparison.OrdinalIgnoreCase) ||
            k.StartsWith("ConnectionStrings__", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            start.Environment.Remove(name);
        }

        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        start.ArgumentList.Add("exec");
        start.ArgumentList.Add(LocateToolDll());
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start the tool.");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"dotnet-sessions {string.Join(' ', args)} did not finish in two minutes");
        }

        return new ToolResult(process.ExitCode, await stdout, await stderr);
    }

    private static string LocateToolDll()
    {
        // Tests run from SessionMiddleware.Tests/bin/<Configuration>/net10.0/; the tool builds to the same layout.
        var testBin = new DirectoryInfo(AppContext.BaseDirectory);
        var root = testBin.Parent!.Parent!.Parent!.Parent!.FullName;
        var dll = Path.Combine(root, "tools", "SessionMiddleware.Tool", "bin", testBin.Parent!.Name, testBin.Name, "SessionMiddleware.Tool.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException("Build the solution first: the tool was not found.", dll);
    }
}
