using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SessionMiddleware.Storage.Sqlite;

namespace SessionMiddleware.Live;

/// <summary>
/// Keeps the held sessions true while connections are open: from the first one held, listens to the store's
/// <see cref="ISessionChangeFeed"/> (ends in other processes and on other servers; restarted after a failure, with a
/// check of everything held), and every <see cref="CheckInterval"/> ends the sessions whose expiry has passed. Idle, it
/// sends the database nothing but what the feed needs; nothing at all before a session is held.
/// </summary>
internal sealed class LiveSessionMonitor(
    LiveSessionRegistry registry,
    TimeProvider timeProvider,
    ILogger<LiveSessionMonitor> logger,
    IServerSideSessionStore store,
    ISessionChangeFeed? feed = null) : BackgroundService
{
    // The store's own feed when it registered one (PostgreSQL: NOTIFY); the SQLite store's table otherwise.
    private readonly ISessionChangeFeed? _feed = feed ?? (store is SqliteSessionStore sqlite ? new SqliteChangeFeed(sqlite) : null);

    /// <summary>How often expiry is checked (on the injected clock).</summary>
    public static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(1);

    /// <summary>How many times the SQLite feed read its table (0 with another feed): what a measurement counts while idle.</summary>
    internal long FeedReads => _feed is SqliteChangeFeed sqlite ? sqlite.Reads : 0;

    /// <summary>How long a failed feed or check waits before it runs again.</summary>
    public static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await registry.FirstHeld.WaitAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        var listening = _feed is null ? Task.CompletedTask : ListenAsync(_feed, stoppingToken);
        await CheckExpiryAsync(stoppingToken).ConfigureAwait(false);
        await listening.ConfigureAwait(false);
    }

    private async Task ListenAsync(ISessionChangeFeed changes, CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await changes.ListenAsync(registry, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                LiveLog.FeedFailed(logger, changes.GetType().Name, RetryDelay, ex);
            }

            // Real time, not the injected clock: how soon a broken connection to the database is retried is not
            // session time.
            try
            {
                await Task.Delay(RetryDelay, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task CheckExpiryAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(CheckInterval, timeProvider);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                try
                {
                    await registry.CheckExpiredAsync(stoppingToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
                {
                    LiveLog.CheckFailed(logger, CheckInterval, ex);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
