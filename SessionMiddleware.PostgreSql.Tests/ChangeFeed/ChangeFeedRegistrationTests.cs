using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;
using SessionMiddleware.PostgreSql.ChangeFeed;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests.ChangeFeed;

/// <summary>
/// Every <c>UsePostgreSql</c> overload brings the change feed; with a data source the app gives (here a multiplexing
/// one, which cannot wait for notifications), the feed still listens, on a connection of its own with that data source's
/// credentials, outside its pool.
/// </summary>
public sealed class ChangeFeedRegistrationTests : TempFolderTest
{
    [Test]
    public async Task UsePostgreSql_EveryOverload_RegistersOneChangeFeed()
    {
        const string connectionString = "Host=127.0.0.1;Username=app;Password=secret;Database=app";
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        var overloads = new (string Name, Action<IServerSideSessionsBuilder> Use)[]
        {
            ("()", b => b.UsePostgreSql()),
            ("(connectionString)", b => b.UsePostgreSql(connectionString)),
            ("(dataSource)", b => b.UsePostgreSql(dataSource)),
            ("twice", b => b.UsePostgreSql(connectionString).UsePostgreSql(connectionString)),
        };

        foreach (var (name, use) in overloads)
        {
            var services = new ServiceCollection().AddLogging();
            use(services.AddServerSideSessions(o => o.ConnectionString = connectionString));
            await using var provider = services.BuildServiceProvider();

            Assert.That(services.Count(d => d.ServiceType == typeof(ISessionChangeFeed)), Is.EqualTo(1), name);
            Assert.That(provider.GetRequiredService<ISessionChangeFeed>(), Is.TypeOf<PostgreSqlChangeFeed>(), name);
        }
    }

    [Test]
    public void AnotherStoreAfterPostgreSql_DropsPostgreSqlsFeed()
    {
        // A feed reports its own database's ends: a store that replaces PostgreSQL (without a feed) must not keep them.
        var services = new ServiceCollection().AddLogging();
        services.AddServerSideSessions(o => o.ConnectionString = "Host=127.0.0.1;Database=app")
            .UsePostgreSql()
            .UseStore(_ => new SessionMiddleware.Tests.Infrastructure.FaultyStore(null!), "other_sql", 3);

        Assert.That(services.Any(d => d.ServiceType == typeof(ISessionChangeFeed)), Is.False);
    }

    [Test]
    public void ListenerConnectionString_IsUnpooledAndNotMultiplexed_WithTcpKeepalive_UnlessTheAppSetsAKeepalive()
    {
        var ours = new NpgsqlConnectionStringBuilder(PostgreSqlChangeFeed.ListenerConnectionString("Host=db;Multiplexing=true;Maximum Pool Size=5"));
        var appKeepalive = new NpgsqlConnectionStringBuilder(PostgreSqlChangeFeed.ListenerConnectionString("Host=db;Keepalive=10"));
        var socket = new NpgsqlConnectionStringBuilder(PostgreSqlChangeFeed.ListenerConnectionString("Host=/var/run/postgresql"));

        Assert.Multiple(() =>
        {
            Assert.That((ours.Pooling, ours.Multiplexing, ours.TcpKeepAliveTime), Is.EqualTo((false, false, PostgreSqlChangeFeed.TcpKeepAliveSeconds)));
            Assert.That((appKeepalive.KeepAlive, appKeepalive.TcpKeepAliveTime), Is.EqualTo((10, 0)));
            Assert.That(socket.TcpKeepAliveTime, Is.Zero, "no TCP keepalive on a Unix-domain socket");
        });
    }

    [Test]
    public async Task AppGivenMultiplexingDataSource_TheFeedListensOnAConnectionOfItsOwn_AndARevokeOnBEndsTheSessionOnA()
    {
        var server = await PostgresServer.SharedAsync();
        var connectionString = await server.CreateDatabaseAsync();
        var keys = Path.Combine(Folder.Path, "shared-keys");
        await using var dataSource = new NpgsqlDataSourceBuilder(connectionString) { ConnectionStringBuilder = { Multiplexing = true } }.Build();
        try
        {
            await using var a = await SessionTestHost.StartAsync(Path.Combine(Folder.Path, "a"), services: s => s.UsePostgreSql(dataSource), endpoints: HeldRequest.Map, keysFolder: keys);
            await using var b = await SessionTestHost.StartAsync(Path.Combine(Folder.Path, "b"), services: s => s.UsePostgreSql(connectionString), keysFolder: keys);
            using var created = await a.CreateRawClient().GetAsync("/set?key=k&value=v");
            var cookie = $"{a.CookieName}={created.SetCookieValue(a.CookieName)}";
            using var held = await HeldRequest.StartAsync(a.CreateRawClient(), cookie);
            var feed = (PostgreSqlChangeFeed)a.Services.GetRequiredService<ISessionChangeFeed>();
            var waited = Stopwatch.StartNew();
            while (feed.ProcessId == 0 && waited.Elapsed < TimeSpan.FromSeconds(10))
            {
                await Task.Delay(10);
            }

            var application = await PostgresServer.ScalarAsync<string>(connectionString, $"SELECT application_name FROM pg_stat_activity WHERE pid = {feed.ProcessId}");
            await b.Services.GetRequiredService<ISessionManager>().RevokeAsync(a.SessionIdOf(cookie));

            Assert.That(application, Is.EqualTo("SessionMiddleware change feed"), "the feed's own connection, not one of the app's pool");
            Assert.That(await held.EndsWithinAsync(TimeSpan.FromSeconds(10)), Is.True);
        }
        finally
        {
            await server.DropDatabaseAsync(connectionString);
        }
    }
}
