using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using SessionMiddleware.PostgreSql;
using SessionMiddleware.Storage.Sqlite;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// <c>UsePostgreSql</c>: what it registers and checks, and the middleware end to end over a real PostgreSQL server
/// (the store's own behaviour is in <see cref="StoreSpecificationTests"/>, several servers in <see cref="TwoNodeTests"/>, the
/// middleware-level suites run over both stores: LifecycleTests, HostileCookieTests, ConcurrencyTests, RevokeInFlightTests, StoreFaultTests).
/// </summary>
public sealed class PostgreSqlHostTests : TempFolderTest
{
    [Test]
    public void UsePostgreSql_ExtendsOnlyTheSessionsBuilder_SoItCannotBeCalledWithoutAddServerSideSessions()
    {
        var overloads = typeof(ServerSideSessionPostgreSqlExtensions).GetMethods()
            .Where(m => m.Name == nameof(ServerSideSessionPostgreSqlExtensions.UsePostgreSql))
            .ToList();

        Assert.Multiple(() =>
        {
            Assert.That(overloads, Has.Count.EqualTo(3));
            Assert.That(overloads.Select(m => m.GetParameters()[0].ParameterType), Has.All.EqualTo(typeof(IServerSideSessionsBuilder)));
            Assert.That(overloads.Select(m => m.ReturnType), Has.All.EqualTo(typeof(IServerSideSessionsBuilder)));
        });
    }

    [Test]
    public void UsePostgreSql_ReplacesTheStoreAndTheSqliteConnectionStringCheck()
    {
        var services = new ServiceCollection();
        services.AddServerSideSessions(o => o.TableName = "app_sessions").UsePostgreSql("Host=127.0.0.1;Database=app;Username=app");
        using var provider = services.BuildServiceProvider();

        var options = provider.GetRequiredService<IOptions<ServerSideSessionOptions>>().Value;
        var validators = provider.GetServices<IValidateOptions<ServerSideSessionOptions>>().ToList();

        Assert.Multiple(() =>
        {
            Assert.That(provider.GetRequiredService<IServerSideSessionStore>(), Is.InstanceOf<PostgreSqlSessionStore>());
            Assert.That(options.ConnectionString, Is.EqualTo("Host=127.0.0.1;Database=app;Username=app"));
            Assert.That(options.TableName, Is.EqualTo("app_sessions"));
            Assert.That(validators.OfType<PostgreSqlConnectionStringValidator>().Count(), Is.EqualTo(1));
            Assert.That(validators.OfType<SqliteConnectionStringValidator>(), Is.Empty);
            Assert.That(provider.GetRequiredService<ISessionManager>(), Is.Not.Null);
        });
    }

    [TestCase("Data Source=sessions.db")]
    [TestCase("Host=;Database=app")]
    [TestCase("Database=app;Username=app")]
    [TestCase("Host=db;Frobnicate=yes")]
    public void UsePostgreSql_WithAConnectionStringThatNamesNoServer_FailsAtStartupNamingTheOption(string connectionString)
    {
        using var provider = ProviderWith(connectionString);

        var ex = Assert.Throws<OptionsValidationException>(() => _ = provider.GetRequiredService<IOptions<ServerSideSessionOptions>>().Value);

        Assert.That(ex!.Message, Does.Contain("ServerSideSessionOptions.ConnectionString").And.Contain("PostgreSQL"));
    }

    [Test]
    public void UsePostgreSql_WithoutArguments_TakesTheConfiguredConnectionString()
    {
        var services = new ServiceCollection();
        services.AddServerSideSessions(o => o.ConnectionString = "Host=db.internal;Database=app").UsePostgreSql();
        using var provider = services.BuildServiceProvider();

        Assert.That(provider.GetRequiredService<IOptions<ServerSideSessionOptions>>().Value.ConnectionString, Is.EqualTo("Host=db.internal;Database=app"));
    }

    [TestCase("Host=db;Database=app", 20)]
    [TestCase("Host=db;Database=app;Max Auto Prepare=0", 0)]
    [TestCase("Host=db;Database=app;Max Auto Prepare=5", 5)]
    [TestCase("Host=db;Database=app;maxautoprepare=0", 0)]
    public void UsePostgreSql_PreparesAutomatically_UnlessTheConnectionStringSetsMaxAutoPrepare_EvenToZero(string connectionString, int expected)
    {
        // Max Auto Prepare=0 is how PgBouncer in transaction-pooling mode is used: it must stay 0.
        using var provider = ProviderWith(connectionString);

        var settings = new NpgsqlConnectionStringBuilder(provider.GetRequiredService<PostgreSqlSessionDataSource>().DataSource.ConnectionString);

        Assert.That(settings.MaxAutoPrepare, Is.EqualTo(expected));
    }

    [TestCase("Host=db;Database=app", true)]
    [TestCase("Host=db;Database=app;Multiplexing=false", false)]
    [TestCase("Host=db;Database=app;multiplexing=true", true)]
    public void UsePostgreSql_Multiplexes_UnlessTheConnectionStringSetsMultiplexing(string connectionString, bool expected)
    {
        using var provider = ProviderWith(connectionString);

        var settings = new NpgsqlConnectionStringBuilder(provider.GetRequiredService<PostgreSqlSessionDataSource>().DataSource.ConnectionString);

        Assert.That(settings.Multiplexing, Is.EqualTo(expected));
    }

    [Test]
    public void UsePostgreSql_TheGroupCommitWriter_HasAConnectionWithoutMultiplexing_AndTheStringsOtherSettings()
    {
        using var provider = ProviderWith("Host=db;Database=app;Maximum Pool Size=30");
        var dataSources = provider.GetRequiredService<PostgreSqlSessionDataSource>();

        var writer = new NpgsqlConnectionStringBuilder(dataSources.WriterDataSource.ConnectionString);

        Assert.Multiple(() =>
        {
            Assert.That(new NpgsqlConnectionStringBuilder(dataSources.DataSource.ConnectionString).Multiplexing, Is.True);
            Assert.That(writer.Multiplexing, Is.False, "the writer batches its writes itself");
            Assert.That((writer.Host, writer.Database, writer.MaxPoolSize, writer.MaxAutoPrepare, writer.ApplicationName), Is.EqualTo(("db", "app", 30, 20, "SessionMiddleware")));
        });
    }

    [Test]
    public void UsePostgreSql_WithMultiplexingOff_OrTheAppsDataSource_TheWriterSharesIt()
    {
        using var provider = ProviderWith("Host=db;Database=app;Multiplexing=false");
        var fromString = provider.GetRequiredService<PostgreSqlSessionDataSource>();
        using var appDataSource = NpgsqlDataSource.Create("Host=db;Database=app;Multiplexing=true");
        using var fromApp = new PostgreSqlSessionDataSource(appDataSource);

        Assert.Multiple(() =>
        {
            Assert.That(fromString.WriterDataSource, Is.SameAs(fromString.DataSource));
            Assert.That(fromApp.WriterDataSource, Is.SameAs(appDataSource), "a data source the app built is used as it is");
        });
    }

    [Test]
    public async Task UsePostgreSql_TheStoresOwnConnections_PlanEachStatementOnce_ButNotWithoutPreparation_NorOnTheAppsDataSource()
    {
        // Re-planning the group load on most runs cost PostgreSQL more than running it (docs/scaling.md).
        var server = await PostgresServer.SharedAsync();
        var connectionString = await server.CreateDatabaseAsync();
        try
        {
            using var prepared = ProviderWith(connectionString);
            using var unprepared = ProviderWith(connectionString + ";Max Auto Prepare=0");
            await using var appDataSource = NpgsqlDataSource.Create(connectionString);
            await using var fromApp = new PostgreSqlSessionDataSource(appDataSource);
            var dataSources = prepared.GetRequiredService<PostgreSqlSessionDataSource>();

            Assert.Multiple(async () =>
            {
                Assert.That(await PlanCacheModeAsync(dataSources.DataSource), Is.EqualTo("force_generic_plan"));
                Assert.That(await PlanCacheModeAsync(dataSources.WriterDataSource), Is.EqualTo("force_generic_plan"), "the group-commit writer's connection");
                Assert.That(await PlanCacheModeAsync(unprepared.GetRequiredService<PostgreSqlSessionDataSource>().DataSource), Is.EqualTo("auto"), "PgBouncer's transaction pooling: no session setting");
                Assert.That(await PlanCacheModeAsync(fromApp.DataSource), Is.EqualTo("auto"), "the app's data source is used as it is");
            });
        }
        finally
        {
            await server.DropDatabaseAsync(connectionString);
        }

        static async Task<string?> PlanCacheModeAsync(NpgsqlDataSource dataSource)
        {
            await using var command = dataSource.CreateCommand("SHOW plan_cache_mode");
            return (string?)await command.ExecuteScalarAsync();
        }
    }

    [Test]
    public async Task UsePostgreSql_WithTheAppsDataSource_UsesIt_AndLeavesItOpen()
    {
        var server = await PostgresServer.SharedAsync();
        var connectionString = await server.CreateDatabaseAsync();
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        try
        {
            var services = new ServiceCollection();
            services.AddLogging();
            services.AddServerSideSessions().UsePostgreSql(dataSource);
            await using (var provider = services.BuildServiceProvider())
            {
                await provider.GetRequiredService<IServerSideSessionStore>().MigrateAsync();
            }

            await using var command = dataSource.CreateCommand("SELECT COUNT(*) FROM sessions");
            Assert.That(await command.ExecuteScalarAsync(), Is.EqualTo(0L), "the data source still works after the container is disposed");
        }
        finally
        {
            await server.DropDatabaseAsync(connectionString);
        }
    }

    [Test]
    public async Task Middleware_OverPostgreSql_CreatesReadsRenewsAndAbandons()
    {
        var server = await PostgresServer.SharedAsync();
        var connectionString = await server.CreateDatabaseAsync();
        try
        {
            await using var host = await SessionTestHost.StartAsync(Folder.Path, services: s => s.UsePostgreSql(connectionString));
            var client = host.CreateRawClient();

            using var first = await client.GetAsync("/set?key=a&value=1");
            var cookie = $"{host.CookieName}={first.SetCookieValue(host.CookieName)}";
            var id = await client.GetTextAsync("/id", cookie);
            var value = await client.GetTextAsync("/get?key=a", cookie);
            using var regenerated = await client.SendWithCookieAsync("/regenerate", cookie);
            var newCookie = $"{host.CookieName}={regenerated.SetCookieValue(host.CookieName)}";
            var newId = await client.GetTextAsync("/id", newCookie);
            var afterRenewal = await client.GetTextAsync("/get?key=a", newCookie);
            var oldCookieAfterRenewal = await client.GetTextAsync("/get?key=a", cookie);
            var rowsBeforeAbandon = await CountAsync(connectionString);
            await client.GetTextAsync("/abandon", newCookie);

            Assert.Multiple(async () =>
            {
                Assert.That(value, Is.EqualTo("1"));
                Assert.That(newId, Is.Not.EqualTo(id));
                Assert.That(afterRenewal, Is.EqualTo("1"), "data kept across the new ID");
                Assert.That(oldCookieAfterRenewal, Is.EqualTo("(none)"), "the old ID is dead");
                Assert.That(rowsBeforeAbandon, Is.EqualTo(1));
                Assert.That(await CountAsync(connectionString), Is.Zero, "abandon deleted the row");
                Assert.That(host.Logs.GetSnapshot().Any(r => r.Id.Name == "MigratedPostgreSql"), Is.True);
            });
        }
        finally
        {
            await server.DropDatabaseAsync(connectionString);
        }
    }

    [Test]
    public async Task Middleware_OverPostgreSql_ExpiredSessionIsEmpty_ItsRowDeleted_AndAWriteGetsANewId()
    {
        var server = await PostgresServer.SharedAsync();
        var connectionString = await server.CreateDatabaseAsync();
        try
        {
            await using var host = await SessionTestHost.StartAsync(Folder.Path, o => o.IdleTimeout = TimeSpan.FromMinutes(20), services: s => s.UsePostgreSql(connectionString));
            var client = host.CreateRawClient();
            using var first = await client.GetAsync("/set?key=a&value=1");
            var cookie = $"{host.CookieName}={first.SetCookieValue(host.CookieName)}";
            var id = await client.GetTextAsync("/id", cookie);

            host.Time.Advance(TimeSpan.FromMinutes(21));
            var read = await client.GetTextAsync("/get?key=a", cookie);
            var rowsAfterRead = await CountAsync(connectionString);
            using var write = await client.SendWithCookieAsync("/set?key=b&value=2", cookie);
            var newCookie = $"{host.CookieName}={write.SetCookieValue(host.CookieName)}";

            Assert.Multiple(async () =>
            {
                Assert.That(read, Is.EqualTo("(none)"));
                Assert.That(rowsAfterRead, Is.Zero, "the expired row was deleted when loaded");
                Assert.That(write.SetCookieValue(host.CookieName), Is.Not.Null, "a new cookie");
                Assert.That(await client.GetTextAsync("/id", newCookie), Is.Not.EqualTo(id), "never the presented ID");
            });
        }
        finally
        {
            await server.DropDatabaseAsync(connectionString);
        }
    }

    private static Task<long> CountAsync(string connectionString) =>
        PostgresServer.ScalarAsync<long>(connectionString, "SELECT COUNT(*) FROM sessions");

    /// <summary>A container with the sessions on PostgreSQL through <paramref name="connectionString"/>.</summary>
    private static ServiceProvider ProviderWith(string connectionString)
    {
        var services = new ServiceCollection();
        services.AddServerSideSessions().UsePostgreSql(connectionString);
        return services.BuildServiceProvider();
    }
}
