using Dapper;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using SessionMiddleware.Logging;

namespace SessionMiddleware.Storage.Sqlite;

/// <summary>
/// Copies the WAL back into the database file in the background, instead of SQLite's automatic checkpoint, which runs
/// inside whichever commit crosses 1,000 WAL pages and waits for two fsyncs there.
/// <para>
/// Once a second, passive checkpoints beside the writer copy the bulk and block nobody. Under steady writes they never
/// copy the last frames (commits append meanwhile), and SQLite restarts the WAL only after a complete checkpoint, so
/// past <see cref="RestartThresholdFrames"/> frames the writer finishes it between two group transactions
/// (<see cref="SqliteWriteQueue.RunAloneAsync"/>), with only the few frames the passes left. Durability is unchanged:
/// committed transactions are in the WAL either way.
/// </para>
/// </summary>
internal sealed class SqliteCheckpointer : IAsyncDisposable
{
    /// <summary>Frames left in the WAL after the background step above which the writer finishes the checkpoint (SQLite's own auto-checkpoint threshold).</summary>
    public const int RestartThresholdFrames = 1000;

    // Background passes per tick at most, and the frames appended during one below which the writer may finish.
    private const int MaxBackgroundPasses = 4;
    private const int SmallRemainderFrames = 256;

    private const string PassiveCheckpoint = "PRAGMA wal_checkpoint(PASSIVE);";
    private readonly Func<CancellationToken, Task<SqliteConnection>> _open;
    private readonly SqliteWriteQueue _writes;
    private readonly TimeSpan _interval;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _loop;

    public SqliteCheckpointer(Func<CancellationToken, Task<SqliteConnection>> open, SqliteWriteQueue writes, TimeSpan interval, ILogger logger)
    {
        _open = open;
        _writes = writes;
        _interval = interval;
        _logger = logger;
        _loop = Task.Run(RunAsync);
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }

        _stopping.Dispose();
    }

    private async Task RunAsync()
    {
        // Real time on purpose: this is I/O housekeeping, not session expiry.
        using var timer = new PeriodicTimer(_interval);
        while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
        {
            try
            {
                Result background;
                var connection = await _open(_stopping.Token).ConfigureAwait(false);
                await using (connection.ConfigureAwait(false))
                {
                    background = await CheckpointAsync(connection, _stopping.Token).ConfigureAwait(false);

                    // The writer's step pauses this process's writes while it copies what is left: passes beside the
                    // writer first, each copying what came in during the one before, keep that pause short.
                    for (var pass = 1; pass < MaxBackgroundPasses && background.Frames >= RestartThresholdFrames; pass++)
                    {
                        var next = await CheckpointAsync(connection, _stopping.Token).ConfigureAwait(false);
                        var appended = next.Frames - background.Frames;
                        background = next;
                        if (appended < SmallRemainderFrames)
                        {
                            break;
                        }
                    }
                }

                if (background.Frames >= RestartThresholdFrames)
                {
                    var final = await _writes.RunAloneAsync(CheckpointAsync, _stopping.Token).ConfigureAwait(false);
                    Log.CheckpointFinishedByWriter(_logger, background.Frames, background.Left, final.Left);
                }
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // A missing table or file, a lock: the next tick tries again; requests report their own errors.
                Log.CheckpointFailed(_logger, ex);
            }
        }
    }

    private static async Task<Result> CheckpointAsync(SqliteConnection connection, CancellationToken cancellationToken)
    {
        // One row: busy (1 when it could not run to the end), log (frames in the WAL), checkpointed (frames copied).
        var row = await connection.QuerySingleAsync<(long Busy, long Log, long Checkpointed)>(
            new CommandDefinition(PassiveCheckpoint, cancellationToken: cancellationToken)).ConfigureAwait(false);
        return new Result(row.Log, Math.Max(0, row.Log - row.Checkpointed));
    }

    /// <summary>Frames in the WAL, and those not copied back yet.</summary>
    private readonly record struct Result(long Frames, long Left);
}
