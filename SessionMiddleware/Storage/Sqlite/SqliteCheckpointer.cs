using Dapper;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace SessionMiddleware.Storage.Sqlite;

/// <summary>
/// Copies the WAL back into the database file in the background, instead of SQLite's automatic checkpoint, which runs
/// inside whichever commit crosses 1,000 WAL pages and, with <c>synchronous=NORMAL</c>, waits for two fsyncs there (a
/// profile of <c>/new</c> under load showed the writer spending 78% of its time in COMMIT for that reason).
/// <para>
/// Once a second: first <c>PRAGMA wal_checkpoint(PASSIVE)</c> on a connection of its own, beside the writer, which copies
/// the bulk of the WAL and blocks nobody. Under steady writes that alone never catches up (commits append while it runs),
/// and SQLite only starts the WAL over from its beginning once a checkpoint has copied every frame: the WAL would grow
/// without end (2 GB after 40 s of <c>/new</c> load, for a 53 MB database). So when more than
/// <see cref="RestartThresholdFrames"/> frames are left, a second passive checkpoint runs on the writer's connection
/// between two group transactions (<see cref="SqliteWriteQueue.RunAloneAsync"/>): it only has the few frames appended
/// since to copy, nothing appends meanwhile, so it completes, and the next commit writes the WAL from its start again.
/// To keep that pause short, up to <see cref="MaxBackgroundPasses"/> passes beside the writer run first, each copying
/// what was appended during the one before, until fewer than <see cref="SmallRemainderFrames"/> came in. Committed transactions are in the WAL
/// either way: durability across a process crash is unchanged.
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

                    // The writer's step below pauses this process's writes while it copies (and fsyncs) whatever was
                    // appended since this step began. Under heavy writes that was half a second of WAL (a 44 ms p99 on
                    // /new): passes beside the writer first, each copying what came in during the one before, leave it
                    // little.
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
