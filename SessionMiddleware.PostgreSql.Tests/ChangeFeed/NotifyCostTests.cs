using System.Diagnostics;
using System.Security.Cryptography;
using Dapper;
using Npgsql;
using NpgsqlTypes;
using SessionMiddleware.PostgreSql;
using SessionMiddleware.PostgreSql.ChangeFeed;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests.ChangeFeed;

/// <summary>
/// What the notification adds to a revoke and to a renewal: the store's statements against the same statements without
/// their <c>pg_notify</c>, alternated in rounds, 8 at a time, with a server listening (as in production). Measured and
/// printed, not asserted.
/// </summary>
public sealed class NotifyCostTests
{
    private const int Concurrency = 8;
    private const int PerRound = 1000;
    private const int Rounds = 6;

    [Test]
    public async Task NotifyCost_OfRevokesAndRenewals_Measured()
    {
        var server = await PostgresServer.SharedAsync();
        var connectionString = await server.CreateDatabaseAsync();
        try
        {
            await using var dataSource = NpgsqlDataSource.Create(connectionString);
            await PostgresServer.ScalarAsync<int>(connectionString, "SELECT 1");
            await using (var store = new PostgreSqlSessionStore(dataSource, Microsoft.Extensions.Options.Options.Create(new ServerSideSessionOptions()), StoreFactory.NewTime(), Microsoft.Extensions.Logging.Abstractions.NullLogger<PostgreSqlSessionStore>.Instance))
            {
                await store.MigrateAsync();
            }

            var sql = PostgreSqlSessionSql.For("sessions");
            var notified = $", notified AS (SELECT pg_notify('{sql.Channel}', @Notice) FROM ";
            string Plain(string statement, string from) => statement.Replace(notified + from + ")", "", StringComparison.Ordinal).Replace($"FROM {from}, notified", $"FROM {from}", StringComparison.Ordinal);
            var deletes = (Notify: sql.DeleteReturning, Plain: Plain(sql.DeleteReturning, "d"));
            var renewals = (Notify: sql.Renew, Plain: Plain(sql.Renew, "old"));
            Assert.That(deletes.Plain + renewals.Plain, Does.Not.Contain("pg_notify"));

            await using var listener = new NpgsqlConnection(connectionString);
            await listener.OpenAsync();
            await using (var listen = new NpgsqlCommand($"LISTEN {sql.Channel}", listener))
            {
                await listen.ExecuteNonQueryAsync();
            }

            using var stop = new CancellationTokenSource();
            var draining = DrainAsync(listener, stop.Token);
            var times = new Dictionary<string, List<double>> { ["delete"] = [], ["delete+notify"] = [], ["renew"] = [], ["renew+notify"] = [] };
            for (var round = 0; round < Rounds; round++)
            {
                // A B, then B A: a drift in the machine's load falls on both.
                foreach (var notify in round % 2 == 0 ? new[] { false, true } : [true, false])
                {
                    times[notify ? "delete+notify" : "delete"].Add(await RunAsync(dataSource, notify ? deletes.Notify : deletes.Plain, renewal: false));
                    times[notify ? "renew+notify" : "renew"].Add(await RunAsync(dataSource, notify ? renewals.Notify : renewals.Plain, renewal: true));
                }
            }

            await stop.CancelAsync();
            await draining;
            foreach (var (name, perOp) in times)
            {
                var median = perOp.Order().ElementAt(perOp.Count / 2);
                TestContext.Progress.WriteLine($"notify cost: {name,-14} {PerRound} per round × {Rounds} rounds, {Concurrency} at a time: median {median:F0} µs per statement (wall time / count); rounds {string.Join(" / ", perOp.Select(t => $"{t:F0}"))}");
            }
        }
        finally
        {
            await server.DropDatabaseAsync(connectionString);
        }
    }

    /// <summary>Stores <see cref="PerRound"/> rows, then runs the statement once for each, <see cref="Concurrency"/> at a time: µs per statement.</summary>
    private static async Task<double> RunAsync(NpgsqlDataSource dataSource, string statement, bool renewal)
    {
        var keys = Enumerable.Range(0, PerRound).Select(_ => RandomNumberGenerator.GetBytes(32)).ToArray();
        await using (var insert = dataSource.CreateCommand(
            "INSERT INTO sessions (id, user_id, data, created_at, last_access, version, expires_at) " +
            "SELECT k, 'u', '\\x01', 1767268800, 1767268800, 1, 1767272400 FROM unnest($1::bytea[]) AS k"))
        {
            insert.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea, Value = keys });
            await insert.ExecuteNonQueryAsync();
        }

        var next = -1;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, Concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < keys.Length)
            {
                await using var connection = await dataSource.OpenConnectionAsync();
                var key = keys[i];
                if (renewal)
                {
                    var newKey = RandomNumberGenerator.GetBytes(32);
                    await connection.ExecuteAsync(statement, new
                    {
                        OldId = key, ExpectedVersion = 1L, NewId = newKey, UserId = "u", Data = new byte[] { 1 }, Ip = (string?)null, UserAgent = (string?)null,
                        ExpiresAt = (long?)null, Now = 1767268800L, IdleSeconds = 1200L, AbsoluteSeconds = (long?)null,
                        SignedInAt = (long?)null, IdpIssuer = (string?)null, IdpSid = (string?)null, IdpSubject = (string?)null, CredentialStamp = (string?)null,
                        Notice = PostgreSqlChangeNotice.Renewed(key, newKey, "u"),
                    });
                }
                else
                {
                    await connection.QueryAsync(statement, new { Id = key, Notice = PostgreSqlChangeNotice.Ended(key) });
                }
            }
        }));
        return clock.Elapsed.TotalMicroseconds / keys.Length;
    }

    private static async Task DrainAsync(NpgsqlConnection listener, CancellationToken stop)
    {
        try
        {
            while (true)
            {
                await listener.WaitAsync(stop);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
