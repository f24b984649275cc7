using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using SessionMiddleware.Cleanup;
using SessionMiddleware.Diagnostics;
using SessionMiddleware.Storage;
using SessionMiddleware.Storage.Sqlite;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary><c>AddHealthChecks().AddServerSideSessionStore()</c>: the store's schema check and the cleaner's last run.</summary>
[LaneFixture]
public sealed class HealthCheckTests : TempFolderTest
{
    private static Task<SessionTestHost> StartAsync(
        string folder,
        Action<IServerSideSessionsBuilder>? services = null,
        HealthStatus? failureStatus = null,
        bool withCleaner = true) =>
        SessionTestHost.StartAsync(
            folder,
            o => o.CleanupInterval = TimeSpan.FromMinutes(1),
            services: s =>
            {
                services?.Invoke(s);
                s.Services.AddHealthChecks().AddServerSideSessionStore(failureStatus: failureStatus, tags: ["ready"]);
                if (!withCleaner)
                {
                    s.Services.Remove(s.Services.Single(d => d.ImplementationType == typeof(SessionCleanupService)));
                }
            },
            endpoints: app => app.MapHealthChecks("/healthz"));

    private static async Task<HealthReportEntry> CheckAsync(SessionTestHost host)
    {
        var report = await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();
        return report.Entries["server-side-sessions"];
    }

    [Test]
    public async Task MigratedStore_IsHealthy_WithTheStoreKindAndSchemaVersion()
    {
        await using var host = await StartAsync(Folder.Path);

        var entry = await CheckAsync(host);
        using var response = await host.CreateRawClient().GetAsync("/healthz");

        Assert.Multiple(() =>
        {
            Assert.That(entry.Status, Is.EqualTo(HealthStatus.Healthy), entry.Description);
            Assert.That(entry.Data["store"], Is.EqualTo("sqlite"));
            Assert.That(entry.Data["schema_version"], Is.EqualTo(SessionTableSchema.Version));
            Assert.That(entry.Data.ContainsKey("last_cleanup"), Is.False, "no cleanup ran yet");
            Assert.That(entry.Tags, Is.EquivalentTo(new[] { "ready" }));
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        });
    }

    [Test]
    public async Task AfterACleanupRun_IsHealthy_WithItsTimeAndRowsDeleted()
    {
        await using var host = await StartAsync(Folder.Path, withCleaner: false);
        var status = host.Services.GetRequiredService<CleanupStatus>();
        status.RunEnded(7, null);

        var entry = await CheckAsync(host);

        Assert.Multiple(() =>
        {
            Assert.That(entry.Status, Is.EqualTo(HealthStatus.Healthy), entry.Description);
            Assert.That(entry.Data["last_cleanup"], Is.EqualTo(host.Time.GetUtcNow()));
            Assert.That(entry.Data["rows_deleted"], Is.EqualTo(7));
        });
    }

    [Test]
    public async Task CleanerWhoseLastRunFailed_IsDegraded_WithTheReason()
    {
        FaultyStore store = null!;
        await using var host = await StartAsync(Folder.Path, s => s.UseStore(sp =>
            store = new FaultyStore(ActivatorUtilities.CreateInstance<SqliteSessionStore>(sp))));
        var cleaner = host.Services.GetServices<IHostedService>().OfType<SessionCleanupService>().Single();
        store.OnListExpired = () => new TimeoutException("database is locked");

        await cleaner.RunOnceAsync(CancellationToken.None);
        var failing = await CheckAsync(host);
        store.OnListExpired = null;
        await cleaner.RunOnceAsync(CancellationToken.None);
        var recovered = await CheckAsync(host);

        Assert.Multiple(() =>
        {
            Assert.That(failing.Status, Is.EqualTo(HealthStatus.Degraded));
            Assert.That(failing.Description, Does.Contain("database is locked"));
            Assert.That(recovered.Status, Is.EqualTo(HealthStatus.Healthy), recovered.Description);
        });
    }

    [Test]
    public async Task CleanerThatHasNotRunFor3Intervals_IsDegraded()
    {
        // No cleaner runs (a stalled one); the status is kept from the start, as the hosted cleaner's construction does.
        await using var host = await StartAsync(Folder.Path, withCleaner: false);
        _ = host.Services.GetRequiredService<CleanupStatus>();

        host.Time.Advance(TimeSpan.FromMinutes(3));
        var atTheLimit = await CheckAsync(host);
        host.Time.Advance(TimeSpan.FromSeconds(1));
        var stalled = await CheckAsync(host);

        Assert.Multiple(() =>
        {
            Assert.That(atTheLimit.Status, Is.EqualTo(HealthStatus.Healthy), atTheLimit.Description);
            Assert.That(stalled.Status, Is.EqualTo(HealthStatus.Degraded));
            Assert.That(stalled.Description, Does.Contain("has not completed a run"));
        });
    }

    [Test]
    public async Task DroppedTable_IsUnhealthy_WithTheReason_AndAnswers503()
    {
        await using var host = await StartAsync(Folder.Path);
        using (var connection = host.OpenDatabase())
        using (var command = connection.CreateCommand())
        {
            command.CommandText = "DROP TABLE sessions";
            command.ExecuteNonQuery();
        }

        var entry = await CheckAsync(host);
        using var response = await host.CreateRawClient().GetAsync("/healthz");

        Assert.Multiple(() =>
        {
            Assert.That(entry.Status, Is.EqualTo(HealthStatus.Unhealthy));
            Assert.That(entry.Description, Does.StartWith("The session store cannot be used:").And.Contain("sessions"));
            Assert.That(entry.Exception, Is.Not.Null);
            Assert.That(entry.Data["store"], Is.EqualTo("sqlite"));
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
        });
    }

    [Test, InLane(TestLane.PostgreSql)]
    public async Task PostgreSqlServerStopped_IsUnhealthy_WithTheReason_AndAnswers503()
    {
        await using var postgres = await PostgresServer.StartOwnAsync();
        var connectionString = await postgres.CreateDatabaseAsync();
        await using var host = await StartAsync(Folder.Path, s => s.UsePostgreSql(connectionString));

        var running = await CheckAsync(host);
        await postgres.StopAsync();
        var stopped = await CheckAsync(host);
        using var response = await host.CreateRawClient().GetAsync("/healthz");

        Assert.Multiple(() =>
        {
            Assert.That(running.Status, Is.EqualTo(HealthStatus.Healthy), running.Description);
            Assert.That(running.Data["store"], Is.EqualTo("postgresql"));
            Assert.That(stopped.Status, Is.EqualTo(HealthStatus.Unhealthy));
            Assert.That(stopped.Description, Does.StartWith("The session store cannot be used:"));
            Assert.That(stopped.Exception, Is.InstanceOf<Npgsql.NpgsqlException>().Or.InstanceOf<System.Net.Sockets.SocketException>(), stopped.Exception?.ToString());
            Assert.That(stopped.Data["store"], Is.EqualTo("postgresql"));
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
        });
    }

    [Test]
    public async Task DroppedTable_WithFailureStatusDegraded_IsDegraded()
    {
        await using var host = await StartAsync(Folder.Path, failureStatus: HealthStatus.Degraded);
        using (var connection = host.OpenDatabase())
        using (var command = connection.CreateCommand())
        {
            command.CommandText = "DROP TABLE sessions";
            command.ExecuteNonQuery();
        }

        var entry = await CheckAsync(host);

        Assert.That(entry.Status, Is.EqualTo(HealthStatus.Degraded));
    }
}
