using System.Diagnostics;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using SessionMiddleware.Cookies;
using SessionMiddleware.Ids;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// Revoking every session of a user with a few hundred thousand of them deletes in batches: other clients' writes keep
/// flowing on SQLite's single writer (issue 12, item 5: one unbounded statement held them for 1.7 s).
/// </summary>
[Category("Process")]
public sealed class RevokeUnderLoadTests
{
    private const int UserRows = 300_000;

    // The bound on other writers' latency during the revoke.
    private static readonly TimeSpan MaxWriteLatency = TimeSpan.FromMilliseconds(500);

    [Test]
    public async Task RevokeAllForUser_With300kSessions_EndsThemAll_WhileOtherWritesStayUnder500ms()
    {
        using var folder = new TempFolder();
        await using var host = await SessionTestHost.StartAsync(folder.Path, o =>
        {
            o.IdleTimeout = TimeSpan.FromMinutes(20);
            o.CleanupInterval = TimeSpan.FromDays(1);
        });
        var cookies = new List<string>();
        var client = host.CreateRawClient();
        for (var i = 0; i < 4; i++)
        {
            using var response = await client.GetAsync($"/set?key=n&value={i}");
            cookies.Add($"{host.CookieName}={response.SetCookieValue(host.CookieName)}");
        }

        var now = host.Time.GetUtcNow().ToUnixTimeSeconds();
        InsertUserRows(host.DatabasePath, "heavy", now, now + 1200, UserRows);
        var ended = 0;
        host.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<ServerSideSessionOptions>>().Value.Events.OnEnded = _ =>
        {
            Interlocked.Increment(ref ended);
            return Task.CompletedTask;
        };
        var manager = host.Services.GetRequiredService<ISessionManager>();

        var baseline = await LatencyLoad.RunAsync(client, cookies, static (worker, n) => $"/set?key=w{worker}&value={n}", TimeSpan.FromSeconds(3), CancellationToken.None);
        using var stop = new CancellationTokenSource();
        var stopwatch = Stopwatch.StartNew();
        var revoking = Task.Run(async () =>
        {
            try
            {
                return await manager.RevokeAllForUserAsync("heavy");
            }
            finally
            {
                stopwatch.Stop();
                await stop.CancelAsync();
            }
        });
        var during = await LatencyLoad.RunAsync(client, cookies, static (worker, n) => $"/set?key=w{worker}&value={n}", TimeSpan.FromMinutes(5), stop.Token);
        var revoked = await revoking;

        TestContext.Out.WriteLine(
            $"revoke of {UserRows:N0} sessions of one user: {revoked:N0} ended in {stopwatch.Elapsed.TotalSeconds:0.0} s; " +
            $"other writers before: {baseline.Count} writes, p50 {baseline.P(50):0.0} ms, max {baseline.Max:0.0} ms; " +
            $"during: {during.Count} writes, p50 {during.P(50):0.0} ms, p99 {during.P(99):0.0} ms, max {during.Max:0.0} ms; errors {baseline.Errors.Count + during.Errors.Count}");
        Assert.Multiple(() =>
        {
            Assert.That(revoked, Is.EqualTo(UserRows));
            Assert.That(ended, Is.EqualTo(UserRows), "one OnEnded per session");
            Assert.That(host.CountRows(), Is.EqualTo(4), "the other clients' sessions stay");
            Assert.That(baseline.Errors.Concat(during.Errors), Is.Empty);
            Assert.That(during.Count, Is.GreaterThan(0), "writes were served while the revoke ran");
            Assert.That(during.Max, Is.LessThan(MaxWriteLatency.TotalMilliseconds), "the slowest write of another client during the revoke (ms)");
        });
    }

    // One transaction, one prepared statement: a few seconds for 300,000 rows.
    private static void InsertUserRows(string databasePath, string userId, long now, long expiresAt, int count)
    {
        using var connection = new SqliteConnection($"Data Source={databasePath};Pooling=False");
        connection.Open();
        using var transaction = connection.BeginTransaction();
        using var command = connection.CreateCommand();
        command.CommandText = "INSERT INTO sessions (id, user_id, data, created_at, last_access, version, ip, user_agent, expires_at) VALUES ($id, $user, x'0100', $t, $t, 1, NULL, NULL, $e)";
        var id = command.Parameters.Add("$id", SqliteType.Blob);
        command.Parameters.AddWithValue("$user", userId);
        command.Parameters.AddWithValue("$t", now);
        command.Parameters.AddWithValue("$e", expiresAt);
        foreach (var _ in Enumerable.Range(0, count))
        {
            id.Value = SessionIds.ComputeKey(SessionIds.NewSecretId(DateTimeOffset.UtcNow));
            command.ExecuteNonQuery();
        }

        transaction.Commit();
    }
}
