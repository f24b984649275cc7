using Microsoft.Extensions.Logging;
using Npgsql;

namespace SessionMiddleware.PostgreSql.ChangeFeed;

/// <summary>
/// Ends and renewals committed by any server, over PostgreSQL's <c>LISTEN/NOTIFY</c>: the store notifies in the
/// transaction of each revoke, sign-out, abandon and renewal (<see cref="PostgreSqlChangeNotice"/>), and this feed listens
/// on one connection of its own (not one of the store's pool). It checks every session held open once listening starts
/// and again after every reconnect, so an end committed while it was disconnected still ends the connections here.
/// </summary>
/// <remarks>
/// Cost: one idle connection per server, and no query while idle. A dead connection (the database host gone, a network
/// cut) is noticed by TCP keepalive: the kernel sends an empty probe after <see cref="TcpKeepAliveSeconds"/> without
/// traffic, answered by the database host's kernel (no PostgreSQL work); unanswered probes break the connection within
/// about a minute. A connection string that sets <c>Keepalive</c> or <c>Tcp Keepalive</c> keeps its own setting.
/// </remarks>
internal sealed class PostgreSqlChangeFeed : ISessionChangeFeed
{
    /// <summary>Seconds without traffic before the first TCP keepalive probe.</summary>
    internal const int TcpKeepAliveSeconds = 30;

    /// <summary>Seconds between unanswered probes (Linux gives up after 9 by default).</summary>
    internal const int TcpKeepAliveIntervalSeconds = 5;

    /// <summary>The longest wait between attempts to reconnect.</summary>
    internal static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(30);

    private readonly NpgsqlDataSource _dataSource;
    private readonly string _connectionString;
    private readonly string _listen;
    private readonly ILogger<PostgreSqlChangeFeed> _logger;
    private int _processId;

    /// <param name="dataSource">The store's data source: the feed's connection has its server, database and credentials.</param>
    /// <param name="tableName">The session table, whose channel the feed listens on.</param>
    /// <param name="logger">Where connection losses are logged.</param>
    public PostgreSqlChangeFeed(NpgsqlDataSource dataSource, string tableName, ILogger<PostgreSqlChangeFeed> logger)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        _dataSource = dataSource;
        _connectionString = ListenerConnectionString(dataSource.ConnectionString);
        Channel = PostgreSqlChangeNotice.Channel(tableName);
        _listen = $"LISTEN \"{Channel}\";";
        _logger = logger;
    }

    /// <summary>The wait before the first reconnect (1 s); it doubles after each failed attempt, up to <see cref="MaxRetryDelay"/>.</summary>
    internal TimeSpan FirstRetryDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The channel listened on.</summary>
    public string Channel { get; }

    /// <summary>The PostgreSQL backend process of the listening connection, or 0 while not listening.</summary>
    internal int ProcessId => Volatile.Read(ref _processId);

    /// <inheritdoc/>
    public async Task ListenAsync(ISessionChangeListener listener, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(listener);
        var delay = FirstRetryDelay;
        try
        {
            while (true)
            {
                var listened = false;
                try
                {
                    await ListenOnceAsync(listener, () => listened = true, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
                {
                    Volatile.Write(ref _processId, 0);
                    delay = listened ? FirstRetryDelay : delay;
                    ChangeFeedLog.Lost(_logger, delay, ex);
                }
                finally
                {
                    Volatile.Write(ref _processId, 0);
                }

                // Real time, not the injected clock: how soon the database is tried again is not session time.
                await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                delay = delay * 2 < MaxRetryDelay ? delay * 2 : MaxRetryDelay;
            }
        }
        catch (Exception) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping: a wait cancelled, or the connection broken by the cancellation.
            ChangeFeedLog.Stopped(_logger, Channel);
        }
    }

    /// <summary>Connects, listens, checks what is held, then reports notifications until the connection fails.</summary>
    private async Task ListenOnceAsync(ISessionChangeListener listener, Action listening, CancellationToken cancellationToken)
    {
        var connection = CreateConnection();
        await using var connectionScope = connection.ConfigureAwait(false);
        var missed = 0;
        connection.Notification += (_, e) =>
        {
            if (string.Equals(e.Channel, Channel, StringComparison.Ordinal) && !Dispatch(e.Payload, listener))
            {
                Volatile.Write(ref missed, 1);
            }
        };

        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        var command = new NpgsqlCommand(_listen, connection);
        await using (command.ConfigureAwait(false))
        {
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        // Listening before checking: an end committed from now on is notified, one committed before is found by the check.
        await listener.ResynchronizeAsync(cancellationToken).ConfigureAwait(false);
        Volatile.Write(ref _processId, connection.ProcessID);
        listening();
        ChangeFeedLog.Listening(_logger, Channel, connection.ProcessID);
        while (true)
        {
            await connection.WaitAsync(cancellationToken).ConfigureAwait(false);
            if (Interlocked.Exchange(ref missed, 0) != 0)
            {
                await listener.ResynchronizeAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Reports one notification; false when it could not be (then everything held is checked).</summary>
    private bool Dispatch(string payload, ISessionChangeListener listener)
    {
        try
        {
            if (PostgreSqlChangeNotice.Dispatch(payload, listener))
            {
                return true;
            }

            ChangeFeedLog.Unreadable(_logger, Channel, payload.Length > 40 ? payload[..40] : payload);
        }
        catch (Exception ex)
        {
            ChangeFeedLog.HandlerFailed(_logger, Channel, ex);
        }

        return false;
    }

    /// <summary>
    /// A connection of its own, outside the store's pool, with the data source's credentials (its password, or the
    /// app's password provider and certificates when the app gave the data source).
    /// </summary>
    private NpgsqlConnection CreateConnection()
    {
        using var template = _dataSource.CreateConnection();
        return template.CloneWith(_connectionString);
    }

    /// <summary>
    /// The feed's connection string: not pooled (the connection is held for the app's lifetime), not multiplexed (a
    /// multiplexed connection cannot wait for notifications), no prepared statements, and TCP keepalive unless the app
    /// set a keepalive of its own.
    /// </summary>
    internal static string ListenerConnectionString(string connectionString)
    {
        var settings = new NpgsqlConnectionStringBuilder(connectionString)
        {
            Pooling = false,
            Multiplexing = false,
            MaxAutoPrepare = 0,
            Enlist = false,
        };
        if (string.IsNullOrEmpty(settings.ApplicationName))
        {
            settings.ApplicationName = "SessionMiddleware change feed";
        }

        // Keepalive probes are TCP's: not on a Unix-domain socket (a host that is a folder), which fails with its server.
        var unixSocket = settings.Host?.StartsWith('/') == true;
        if (settings is { KeepAlive: 0, TcpKeepAlive: false, TcpKeepAliveTime: 0 } && !unixSocket)
        {
            settings.TcpKeepAliveTime = TcpKeepAliveSeconds;
            settings.TcpKeepAliveInterval = TcpKeepAliveIntervalSeconds;
        }

        return settings.ConnectionString;
    }
}
