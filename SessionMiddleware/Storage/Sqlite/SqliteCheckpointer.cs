using System.Diagnostics;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using SessionMiddleware.Logging;

namespace SessionMiddleware.Storage.Sqlite;

/// <summary>
/// Copies the WAL back into the database file in the background, instead of SQLite's automatic checkpoint, which runs
/// inside whichever commit crosses 1,000 WAL pages and waits for two fsyncs there.
/// <para>
/// Four times a second, passive checkpoints beside the writer copy the bulk and block nobody. Under steady writes they never
/// copy the last frames (commits append meanwhile), and SQLite starts the WAL over only when a writer begins after a
/// checkpoint that copied every frame while no reader kept an older snapshot. So past
/// <see cref="RestartThresholdFrames"/> frames the writer runs <c>wal_checkpoint(RESTART)</c> between two group
/// transactions (<see cref="SqliteWriteQueue.RunAloneAsync"/>), with only the few frames the passes left: it takes
/// SQLite's write lock, which also holds off the writers of other processes on the same file (pausing this process's
/// writer alone would not), copies the rest and waits for older readers. It waits for that lock and those readers
/// through the busy handler for a quarter of <c>BusyTimeout</c> at most (100 ms at most): while it waits it holds
/// SQLite's checkpoint lock, and every other checkpoint on the file (the other processes' passes and restarts) fails
/// meanwhile, so long waits of several processes starved each other and let the WAL grow; when it cannot finish in
/// time, the next tick tries again. Past <see cref="HardCapBytes"/> the writer itself runs the restart step before its
/// next group transaction (checked at most every 100 ms), so that this process's writes wait for the copy instead of
/// growing the WAL further. Durability is unchanged: committed transactions are in the WAL either way.
/// </para>
/// </summary>
internal sealed class SqliteCheckpointer : IAsyncDisposable
{
    /// <summary>Frames left in the WAL after the background step above which the writer finishes the checkpoint (SQLite's own auto-checkpoint threshold).</summary>
    public const int RestartThresholdFrames = 1000;

    /// <summary>
    /// Frames (8 MiB of 4 KiB pages, an eighth of the WAL size limit) past which writers append faster than passes beside
    /// them copy: the restart step runs at once, so that its pause holds writers off and bounds the WAL.
    /// </summary>
    public const int RestartAtOnceFrames = 2048;

    /// <summary>WAL file size past which the writer restarts the WAL before its next group transaction (twice the size limit).</summary>
    public const long HardCapBytes = 2 * SqliteSessionStore.WalSizeLimitBytes;

    // Background passes per tick at most, and the frames appended during one below which the writer may finish.
    private const int MaxBackgroundPasses = 4;
    private const int SmallRemainderFrames = 256;

    // The restart step's longest wait for the write lock or for readers, whatever BusyTimeout is.
    private static readonly TimeSpan MaxRestartWait = TimeSpan.FromMilliseconds(100);

    private const string PassiveCheckpoint = "PRAGMA wal_checkpoint(PASSIVE);";
    private const string RestartCheckpoint = "PRAGMA wal_checkpoint(RESTART);";
    private readonly Func<CancellationToken, Task<SqliteConnection>> _open;
    private readonly long _restartWaitMs;
    private long _framesAtLastRestart = -1;
    private readonly string? _walPath;
    private long _nextHardCapCheck;
    private readonly string _restartBusyTimeout;
    private readonly string _busyTimeout;
    private readonly SqliteWriteQueue _writes;
    private readonly TimeSpan _interval;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _loop;

    /// <param name="open">Opens the connection of the background passes.</param>
    /// <param name="writes">The write queue, whose connection runs the restart step.</param>
    /// <param name="interval">Time between two runs.</param>
    /// <param name="busyTimeoutMs">The connections' busy timeout, restored on the writer's connection after the restart step.</param>
    /// <param name="logger">Where failed and finished checkpoints are logged.</param>
    /// <param name="walPath">The WAL file, whose size the writer checks before each group transaction (null: no file).</param>
    public SqliteCheckpointer(Func<CancellationToken, Task<SqliteConnection>> open, SqliteWriteQueue writes, TimeSpan interval, long busyTimeoutMs, string? walPath, ILogger logger)
    {
        _walPath = walPath;
        if (walPath is not null)
        {
            writes.BeforeBatch = RestartIfWalTooLargeAsync;
        }

        _open = open;
        _restartWaitMs = Math.Max(1, Math.Min(busyTimeoutMs / 4, (long)MaxRestartWait.TotalMilliseconds));
        _restartBusyTimeout = string.Create(CultureInfo.InvariantCulture, $"PRAGMA busy_timeout = {_restartWaitMs};");
        _busyTimeout = string.Create(CultureInfo.InvariantCulture, $"PRAGMA busy_timeout = {busyTimeoutMs};");
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
                    background = await CheckpointAsync(connection, PassiveCheckpoint, _stopping.Token).ConfigureAwait(false);

                    // The restart step pauses every writer while it copies what is left: passes beside the writers
                    // first, each copying what came in during the one before, keep that pause short.
                    for (var pass = 1; pass < MaxBackgroundPasses && background.Frames is >= RestartThresholdFrames and < RestartAtOnceFrames; pass++)
                    {
                        var next = await CheckpointAsync(connection, PassiveCheckpoint, _stopping.Token).ConfigureAwait(false);
                        var appended = next.Frames - background.Frames;
                        background = next;
                        if (appended < SmallRemainderFrames)
                        {
                            break;
                        }
                    }
                }

                // A pass that copied every frame is not enough while writers append (the next one begins after their
                // frames); the restart step is skipped only when nothing was written since the last one (an idle WAL).
                var idle = background.Left == 0 && background.Frames == _framesAtLastRestart;
                if (background.Frames >= RestartThresholdFrames && !idle)
                {
                    var started = Stopwatch.GetTimestamp();
                    var restart = await _writes.RunAloneAsync(RestartAsync, _stopping.Token).ConfigureAwait(false);
                    _framesAtLastRestart = restart.Frames;
                    if (restart.Busy)
                    {
                        Log.CheckpointRestartBusy(_logger, background.Frames, background.Left, _restartWaitMs);
                    }
                    else
                    {
                        Log.CheckpointFinishedByWriter(_logger, background.Frames, background.Left, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                    }
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

    /// <summary>
    /// The hard cap, run by the writer before a group transaction: when the disk copies slower than writers append, the
    /// background ticks fall behind; past <see cref="HardCapBytes"/> the writer runs the restart step itself first, so
    /// this process's writes wait for the copy instead of growing the WAL (checked at most every 100 ms).
    /// </summary>
    private async Task RestartIfWalTooLargeAsync(SqliteConnection connection)
    {
        var now = Environment.TickCount64;
        if (now < _nextHardCapCheck)
        {
            return;
        }

        _nextHardCapCheck = now + 100;
        var wal = new FileInfo(_walPath!);
        if (wal.Exists && wal.Length > HardCapBytes)
        {
            var started = Stopwatch.GetTimestamp();
            var restart = await RestartAsync(connection, CancellationToken.None).ConfigureAwait(false);
            if (!restart.Busy)
            {
                Log.CheckpointFinishedByWriter(_logger, restart.Frames, restart.Left, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
        }
    }

    /// <summary>The writer's step: <c>wal_checkpoint(RESTART)</c> with the busy handler cut short for its waits.</summary>
    private async Task<Result> RestartAsync(SqliteConnection connection, CancellationToken cancellationToken)
    {
        await connection.ExecuteAsync(SqlStatement.Of(_restartBusyTimeout, cancellationToken: cancellationToken)).ConfigureAwait(false);
        try
        {
            return await CheckpointAsync(connection, RestartCheckpoint, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            // Not cancellable: the writer's connection must get its busy timeout back.
            await connection.ExecuteAsync(SqlStatement.Of(_busyTimeout, cancellationToken: CancellationToken.None)).ConfigureAwait(false);
        }
    }

    private static async Task<Result> CheckpointAsync(SqliteConnection connection, string checkpoint, CancellationToken cancellationToken)
    {
        // One row: busy (1 when it could not run to the end: a lock or a reader it could not wait out, or another
        // connection's checkpoint running), log (frames in the WAL), checkpointed (frames copied).
        var row = await connection.QuerySingleAsync<CheckpointRow>(
            SqlStatement.Of(checkpoint, cancellationToken: cancellationToken)).ConfigureAwait(false);
        return new Result(row.Busy != 0, row.Log, Math.Max(0, row.Log - row.Checkpointed));
    }

    /// <summary>Whether the checkpoint stopped short, frames in the WAL, and those not copied back yet.</summary>
    private readonly record struct Result(bool Busy, long Frames, long Left);

    /// <summary>The row of <c>wal_checkpoint</c> (columns <c>busy</c>, <c>log</c>, <c>checkpointed</c>).</summary>
    private sealed class CheckpointRow
    {
        public long Busy { get; set; }

        public long Log { get; set; }

        public long Checkpointed { get; set; }
    }
}
