using System.Diagnostics;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using SessionMiddleware.Cleanup;
using SessionMiddleware.Cookies;
using SessionMiddleware.Ids;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>The cleaner deletes a large expired set in short batches while requests keep being served without errors.</summary>
[Category("Process")]
public sealed class CleanupUnderLoadTests
{
    private const int ExpiredRows = 200_000;

    [Test]
    public async Task Cleaner_With200kExpiredRows_DeletesThemAll_WhileRequestsKeepSucceeding()
    {
        using var folder = new TempFolder();
        await using var host = await SessionTestHost.StartAsync(folder.Path, o =>
        {
            o.IdleTimeout = TimeSpan.FromMinutes(20);
            o.TouchInterval = TimeSpan.Zero;
            o.CleanupInterval = TimeSpan.FromDays(1); // the test runs the cleaner itself
        });
        var cookies = new List<string>();
        var client = host.CreateRawClient();
        for (var i = 0; i < 32; i++)
        {
            using var response = await client.GetAsync($"/set?key=n&value={i}");
            cookies.Add($"{host.CookieName}={response.SetCookieValue(host.CookieName)}");
        }

        InsertExpiredRows(host.DatabasePath, host.Time.GetUtcNow().AddHours(-2).ToUnixTimeSeconds(), ExpiredRows);

        var baseline = await LatencyLoad.RunAsync(client, cookies.Take(8), static (worker, n) => n % 2 == 0 ? "/get?key=n" : $"/set?key=w{worker}&value={n}", TimeSpan.FromSeconds(3), CancellationToken.None);
        var cleaner = host.Services.GetServices<IHostedService>().OfType<SessionCleanupService>().Single();
        using var stop = new CancellationTokenSource();
        var stopwatch = Stopwatch.StartNew();
        var cleaning = Task.Run(async () =>
        {
            try
            {
                return await cleaner.RunOnceAsync(CancellationToken.None);
            }
            finally
            {
                stopwatch.Stop();
                await stop.CancelAsync();
            }
        });
        var during = await LatencyLoad.RunAsync(client, cookies.Take(8), static (worker, n) => n % 2 == 0 ? "/get?key=n" : $"/set?key=w{worker}&value={n}", TimeSpan.FromMinutes(5), stop.Token);
        var deleted = await cleaning;

        TestContext.Out.WriteLine(
            $"cleanup of {ExpiredRows:N0} expired rows: {deleted:N0} deleted in {stopwatch.Elapsed.TotalSeconds:0.0} s ({deleted / stopwatch.Elapsed.TotalSeconds:N0} rows/s); " +
            $"requests before: {baseline.Count} ok, p50 {baseline.P(50):0.0} ms, p99 {baseline.P(99):0.0} ms; " +
            $"during: {during.Count} ok, p50 {during.P(50):0.0} ms, p99 {during.P(99):0.0} ms; errors {baseline.Errors.Count + during.Errors.Count}");
        Assert.Multiple(() =>
        {
            Assert.That(deleted, Is.EqualTo(ExpiredRows));
            Assert.That(host.CountRows(), Is.EqualTo(32), "the live sessions stay");
            Assert.That(baseline.Errors.Concat(during.Errors), Is.Empty);
            Assert.That(during.Count, Is.GreaterThan(0), "requests were served while the cleaner ran");
        });
    }

    private static void InsertExpiredRows(string databasePath, long lastAccess, int count)
    {
        using var connection = new SqliteConnection($"Data Source={databasePath};Pooling=False");
        connection.Open();
        using var transaction = connection.BeginTransaction();
        using var command = connection.CreateCommand();
        command.CommandText = "INSERT INTO sessions (id, user_id, data, created_at, last_access, version, ip, user_agent, expires_at) VALUES ($id, NULL, x'0100', $t, $t, 1, NULL, NULL, $t)";
        var id = command.Parameters.Add("$id", SqliteType.Blob);
        command.Parameters.AddWithValue("$t", lastAccess);
        foreach (var _ in Enumerable.Range(0, count))
        {
            id.Value = SessionIds.ComputeKey(SessionIds.NewSecretId(DateTimeOffset.UtcNow));
            command.ExecuteNonQuery();
        }

        transaction.Commit();
    }
}
