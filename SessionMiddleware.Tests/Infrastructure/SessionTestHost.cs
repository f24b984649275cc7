using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using SessionMiddleware.Ids;
using SessionMiddleware.PostgreSql;

namespace SessionMiddleware.Tests.Infrastructure;

/// <summary>
/// A real Kestrel host on 127.0.0.1 with the session middleware over a SQLite file in a temp folder or a new
/// PostgreSQL database (<see cref="StoreKind"/>), time from a <see cref="FakeTimeProvider"/>, logs collected in
/// memory, and a few endpoints.
/// </summary>
internal sealed class SessionTestHost : IAsyncDisposable
{
    private readonly List<HttpClient> _clients = [];

    private SessionTestHost(WebApplication app, string databasePath, string? postgres, FakeTimeProvider time, FakeLogCollector logs, Uri baseAddress)
    {
        App = app;
        PostgresConnectionString = postgres;
        DatabasePath = databasePath;
        Time = time;
        Logs = logs;
        BaseAddress = baseAddress;
    }

    public WebApplication App { get; }

    public string DatabasePath { get; }

    /// <summary>The PostgreSQL database's connection string, or null on SQLite.</summary>
    public string? PostgresConnectionString { get; }

    public StoreKind Store => PostgresConnectionString is null ? StoreKind.Sqlite : StoreKind.PostgreSql;

    public FakeTimeProvider Time { get; }

    public FakeLogCollector Logs { get; }

    public Uri BaseAddress { get; }

    public IServiceProvider Services => App.Services;

    /// <summary>
    /// Starts a host. <paramref name="keysFolder"/> is the Data Protection key ring folder; <paramref name="beforeSessions"/>
    /// adds middleware before <c>UseServerSideSessions()</c> (e.g. forwarded headers); <paramref name="sessionMiddleware"/>
    /// false leaves <c>UseServerSideSessions()</c> out (a misconfigured app).
    /// </summary>
    public static async Task<SessionTestHost> StartAsync(
        string folder,
        Action<ServerSideSessionOptions>? configure = null,
        Action<IServerSideSessionsBuilder>? services = null,
        Action<WebApplication>? endpoints = null,
        FakeTimeProvider? time = null,
        string? keysFolder = null,
        bool migrate = true,
        bool https = false,
        bool authenticationFirst = false,
        StoreKind store = StoreKind.Sqlite,
        Action<WebApplication>? beforeSessions = null,
        bool sessionMiddleware = true)
    {
        var databasePath = Path.Combine(folder, "sessions.db");
        var postgres = store == StoreKind.PostgreSql ? await (await PostgresServer.SharedAsync()).CreateDatabaseAsync() : null;
        time ??= new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero));
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { EnvironmentName = "Development" });
        if (https)
        {
            builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.UseHttps(TestCertificate.Value)));
        }
        else
        {
            builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        }
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        builder.Logging.AddFakeLogging();
        builder.Services.AddSingleton<TimeProvider>(time);
        builder.Services.AddDataProtection()
            .SetApplicationName("SessionMiddleware.Tests")
            .PersistKeysToFileSystem(new DirectoryInfo(keysFolder ?? Path.Combine(folder, "keys")));
        var sessions = builder.Services.AddServerSideSessions(o =>
        {
            o.ConnectionString = $"Data Source={databasePath}";
            configure?.Invoke(o);
        });
        if (postgres is not null)
        {
            sessions.UsePostgreSql(postgres);
        }

        services?.Invoke(sessions);

        var app = builder.Build();
        if (authenticationFirst)
        {
            // Authentication before the session middleware, as WebApplication places it when the app does not call it.
            app.UseAuthentication();
        }

        beforeSessions?.Invoke(app);
        if (sessionMiddleware)
        {
            app.UseServerSideSessions();
        }

        MapDefaultEndpoints(app);
        endpoints?.Invoke(app);
        if (migrate)
        {
            await app.MigrateServerSideSessionsAsync();
        }

        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new SessionTestHost(app, databasePath, postgres, time, app.Services.GetRequiredService<FakeLogCollector>(), new Uri(address));
    }

    /// <summary>
    /// Endpoints: <c>/get?key=k</c> (the value or "(none)"), <c>/set?key=k&amp;value=v</c>, <c>/remove?key=k</c>,
    /// <c>/clear</c>, <c>/keys</c>, <c>/id</c>, <c>/nothing</c> (does not touch the session), <c>/count</c>
    /// (increments an Int32 counter).
    /// </summary>
    private static void MapDefaultEndpoints(WebApplication app)
    {
        app.MapGet("/get", (HttpContext c, string key) => c.Session.GetString(key) ?? "(none)");
        app.MapGet("/set", (HttpContext c, string key, string value) =>
        {
            c.Session.SetString(key, value);
            return "ok";
        });
        app.MapGet("/remove", (HttpContext c, string key) =>
        {
            c.Session.Remove(key);
            return "ok";
        });
        app.MapGet("/clear", (HttpContext c) =>
        {
            c.Session.Clear();
            return "ok";
        });
        app.MapGet("/keys", (HttpContext c) => string.Join(",", c.Session.Keys.Order(StringComparer.Ordinal)));
        app.MapGet("/id", (HttpContext c) => c.Session.Id);
        app.MapGet("/nothing", () => "nothing");
        app.MapGet("/setsize", (HttpContext c, string key, int size) =>
        {
            c.Session.Set(key, new byte[size]);
            return "ok";
        });
        app.MapGet("/size", (HttpContext c, string key) => c.Session.TryGetValue(key, out var v) ? v.Length.ToString(System.Globalization.CultureInfo.InvariantCulture) : "(none)");
        app.MapGet("/regenerate", (HttpContext c) =>
        {
            c.GetServerSideSession().RegenerateId();
            return c.Session.Id;
        });
        app.MapGet("/abandon", (HttpContext c) =>
        {
            c.GetServerSideSession().Abandon();
            return "ok";
        });
        app.MapGet("/bind", (HttpContext c, string? user) =>
        {
            c.GetServerSideSession().BindToUser(string.IsNullOrEmpty(user) ? null : user);
            return c.Session.Id;
        });
        app.MapGet("/user", (HttpContext c) => c.GetServerSideSession().UserId ?? "(none)");
        app.MapGet("/count", (HttpContext c) =>
        {
            var n = (c.Session.GetInt32("count") ?? 0) + 1;
            c.Session.SetInt32("count", n);
            return n.ToString(System.Globalization.CultureInfo.InvariantCulture);
        });
    }

    private static readonly Lazy<X509Certificate2> TestCertificate = new(() =>
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null);
    });

    /// <summary>A client that keeps cookies, like a browser.</summary>
    public HttpClient CreateBrowser(CookieContainer? cookies = null)
    {
        var handler = new HttpClientHandler
        {
            CookieContainer = cookies ?? new CookieContainer(),
            UseCookies = true,
            AllowAutoRedirect = false,
            ServerCertificateCustomValidationCallback = HttpClientHandler.DangerousAcceptAnyServerCertificateValidator,
        };
        var client = new HttpClient(handler) { BaseAddress = BaseAddress };
        _clients.Add(client);
        return client;
    }

    /// <summary>A client that sends only the cookies a test gives it.</summary>
    public HttpClient CreateRawClient()
    {
        var handler = new HttpClientHandler
        {
            UseCookies = false,
            AllowAutoRedirect = false,
            ServerCertificateCustomValidationCallback = HttpClientHandler.DangerousAcceptAnyServerCertificateValidator,
        };
        var client = new HttpClient(handler) { BaseAddress = BaseAddress };
        _clients.Add(client);
        return client;
    }

    /// <summary>
    /// The session ID (<see cref="ISession.Id"/>) a cookie carries, read with this host's key ring: <c>name=value</c> or
    /// the value alone. Data Protection encrypts with a random IV, so two cookies of one session differ as strings;
    /// tests about which session a cookie names compare this.
    /// </summary>
    public string SessionIdOf(string cookie)
    {
        var value = cookie.StartsWith(CookieName + "=", StringComparison.Ordinal) ? cookie[(CookieName.Length + 1)..] : cookie;
        var secret = Services.GetRequiredService<Cookies.SessionIdProtector>().Unprotect(value, out var reason)
            ?? throw new AssertionException($"not a cookie of this host's key ring ({reason})");
        return SessionIds.ToPublicId(SessionIds.ComputeKey(secret));
    }

    public string CookieName => Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<ServerSideSessionOptions>>().Value.Cookie.Name!;

    /// <summary>The host's own store (SQLite or PostgreSQL, as configured), for a test that wraps it in a <see cref="FaultyStore"/>.</summary>
    public static IServerSideSessionStore RealStore(IServiceProvider services) =>
        services.GetService<PostgreSqlSessionDataSource>() is { } postgres
            ? new PostgreSqlSessionStore(
                postgres.DataSource,
                services.GetRequiredService<Microsoft.Extensions.Options.IOptions<ServerSideSessionOptions>>(),
                services.GetRequiredService<TimeProvider>(),
                services.GetRequiredService<ILogger<PostgreSqlSessionStore>>())
            : ActivatorUtilities.CreateInstance<Storage.Sqlite.SqliteSessionStore>(services);

    /// <summary>Opens the session database directly, SQLite or PostgreSQL (for assertions about what is stored).</summary>
    public async Task<System.Data.Common.DbConnection> OpenConnectionAsync()
    {
        System.Data.Common.DbConnection connection = PostgresConnectionString is null
            ? new SqliteConnection($"Data Source={DatabasePath};Pooling=False")
            : new NpgsqlConnection(new NpgsqlConnectionStringBuilder(PostgresConnectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    /// <summary>Runs one statement on the session database; <c>@name</c> parameters.</summary>
    public async Task<object?> ExecuteScalarAsync(string sql, params (string Name, object Value)[] parameters)
    {
        await using var connection = await OpenConnectionAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value;
            command.Parameters.Add(parameter);
        }

        return await command.ExecuteScalarAsync();
    }

    public async Task<long> CountRowsAsync(string table = "sessions") =>
        Convert.ToInt64(await ExecuteScalarAsync($"SELECT COUNT(*) FROM \"{table}\""), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Opens the session database directly (for assertions about what is stored).</summary>
    public SqliteConnection OpenDatabase()
    {
        var connection = new SqliteConnection($"Data Source={DatabasePath};Pooling=False");
        connection.Open();
        return connection;
    }

    /// <summary>Closes every idle SQLite connection of the app: the provider's pool and the store's held load connections.</summary>
    public async Task ReleaseConnectionsAsync()
    {
        if (Services.GetRequiredService<IServerSideSessionStore>() is Storage.Sqlite.SqliteSessionStore store)
        {
            await store.ReleaseIdleConnectionsAsync();
        }

        SqliteConnection.ClearAllPools();
    }

    public long CountRows(string table = "sessions")
    {
        using var connection = OpenDatabase();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT COUNT(*) FROM \"{table}\"";
        return (long)command.ExecuteScalar()!;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }

        await App.StopAsync();
        await App.DisposeAsync();
        SqliteConnection.ClearAllPools();
        if (PostgresConnectionString is not null)
        {
            await (await PostgresServer.SharedAsync()).DropDatabaseAsync(PostgresConnectionString);
        }
    }
}
