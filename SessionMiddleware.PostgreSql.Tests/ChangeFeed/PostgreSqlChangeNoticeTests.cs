using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using SessionMiddleware.PostgreSql;
using SessionMiddleware.PostgreSql.ChangeFeed;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests.ChangeFeed;

/// <summary>
/// What the store notifies and how the feed reads it: every end and renewal comes through as the listener is told, a
/// user ID too long for a payload ends rather than follows, payloads stay under PostgreSQL's limit, and the cleaner's
/// deletes of expired rows notify nothing.
/// </summary>
public sealed class PostgreSqlChangeNoticeTests
{
    [Test]
    public void Ended_IsReadAsTheEndOfThatKey()
    {
        var key = StoreFactory.NewKey();
        var listener = new RecordingListener();

        var read = PostgreSqlChangeNotice.Dispatch(PostgreSqlChangeNotice.Ended(key), listener);

        Assert.That(read, Is.True);
        Assert.That(listener.Changes, Is.EqualTo(new[] { "ended " + Convert.ToHexString(key) }));
    }

    [TestCase(null)]
    [TestCase("")]
    [TestCase("ann,with,commas")]
    [TestCase("名前")]
    public void Renewed_IsReadWithItsUser(string? userId)
    {
        var (oldKey, newKey) = (StoreFactory.NewKey(), StoreFactory.NewKey());
        var listener = new RecordingListener();

        var read = PostgreSqlChangeNotice.Dispatch(PostgreSqlChangeNotice.Renewed(oldKey, newKey, userId), listener);

        Assert.That(read, Is.True);
        Assert.That(listener.Changes, Is.EqualTo(new[] { $"renewed {Convert.ToHexString(oldKey)} {Convert.ToHexString(newKey)} {userId ?? "(null)"}" }));
    }

    [Test]
    public void RenewedToAUserIdTooLongForAPayload_EndsTheOldKey()
    {
        var (oldKey, newKey) = (StoreFactory.NewKey(), StoreFactory.NewKey());
        var listener = new RecordingListener();
        var notice = PostgreSqlChangeNotice.Renewed(oldKey, newKey, new string('u', 8000));

        var read = PostgreSqlChangeNotice.Dispatch(notice, listener);

        Assert.That(Encoding.UTF8.GetByteCount(notice), Is.LessThan(8000));
        Assert.That(read, Is.True);
        Assert.That(listener.Changes, Is.EqualTo(new[] { "ended " + Convert.ToHexString(oldKey) }), "the user is unknown: what was open ends");
    }

    [TestCase("")]
    [TestCase("e")]
    [TestCase("e,")]
    [TestCase("e,abc")]
    [TestCase("q,0000")]
    [TestCase("r,00")]
    public void AnUnreadablePayload_IsReported(string payload)
    {
        Assert.That(PostgreSqlChangeNotice.Dispatch(payload, new RecordingListener()), Is.False);
    }

    [Test]
    public void Channel_FitsPostgreSqlsIdentifierLength_AndTellsTablesApart()
    {
        var longA = new string('a', 62) + "x";
        var longB = new string('a', 62) + "y";

        Assert.Multiple(() =>
        {
            Assert.That(PostgreSqlChangeNotice.Channel("sessions"), Is.EqualTo("sessions_changes"));
            Assert.That(PostgreSqlChangeNotice.Channel(longA), Has.Length.LessThanOrEqualTo(63));
            Assert.That(PostgreSqlChangeNotice.Channel(longA), Is.Not.EqualTo(PostgreSqlChangeNotice.Channel(longB)));
        });
    }

    [Test]
    public async Task DeleteByUser_OfManyRows_NotifiesEveryKey_InPayloadsUnderTheLimit_AndExpiredDeletesNotifyNothing()
    {
        const int rows = 250;
        var server = await PostgresServer.SharedAsync();
        var connectionString = await server.CreateDatabaseAsync();
        try
        {
            var time = StoreFactory.NewTime();
            await using var dataSource = NpgsqlDataSource.Create(connectionString);
            await using var store = new PostgreSqlSessionStore(dataSource, Options.Create(new ServerSideSessionOptions()), time, NullLogger<PostgreSqlSessionStore>.Instance);
            await store.MigrateAsync();
            var keys = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < rows; i++)
            {
                var key = StoreFactory.NewKey();
                keys.Add(Convert.ToHexString(key));
                await store.CreateAsync(new NewSession(key, [1], "many", null, null));
            }

            var expired = StoreFactory.NewKey();
            await store.CreateAsync(new NewSession(expired, [1], "other", null, null, time.GetUtcNow().AddSeconds(1)));
            await using var listening = new NpgsqlConnection(connectionString);
            await listening.OpenAsync();
            var payloads = new List<string>();
            listening.Notification += (_, e) => payloads.Add(e.Payload);
            await using (var listen = new NpgsqlCommand("LISTEN sessions_changes", listening))
            {
                await listen.ExecuteNonQueryAsync();
            }

            var deleted = await store.DeleteByUserAsync("many", null, 1000);
            time.Advance(TimeSpan.FromMinutes(1));
            var cleaned = await store.DeleteExpiredAsync([expired]);
            await using (var marker = new NpgsqlCommand("NOTIFY sessions_changes, 'marker'", listening))
            {
                await marker.ExecuteNonQueryAsync();
            }

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            while (!payloads.Contains("marker"))
            {
                await listening.WaitAsync(timeout.Token);
            }

            var listener = new RecordingListener();
            foreach (var payload in payloads.Where(p => p != "marker"))
            {
                PostgreSqlChangeNotice.Dispatch(payload, listener);
            }

            Assert.Multiple(() =>
            {
                Assert.That(deleted, Has.Count.EqualTo(rows));
                Assert.That(cleaned, Has.Count.EqualTo(1));
                Assert.That(payloads.Max(p => Encoding.UTF8.GetByteCount(p)), Is.LessThan(8000));
                Assert.That(payloads, Has.Count.EqualTo(4), "250 keys in notifications of 100 keys, and the marker");
                Assert.That(listener.Changes, Is.EquivalentTo(keys.Select(k => "ended " + k)), "every deleted key, once; nothing for the expired row");
            });
        }
        finally
        {
            await server.DropDatabaseAsync(connectionString);
        }
    }

    private sealed class RecordingListener : ISessionChangeListener
    {
        public List<string> Changes { get; } = [];

        public void SessionEnded(ReadOnlySpan<byte> key) => Changes.Add("ended " + Convert.ToHexString(key));

        public void SessionRenewed(ReadOnlySpan<byte> oldKey, ReadOnlySpan<byte> newKey, string? userId) =>
            Changes.Add($"renewed {Convert.ToHexString(oldKey)} {Convert.ToHexString(newKey)} {userId ?? "(null)"}");

        public Task ResynchronizeAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
