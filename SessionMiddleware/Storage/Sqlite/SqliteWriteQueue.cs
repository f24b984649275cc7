using System.Threading.Channels;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using SessionMiddleware.Logging;
using SessionMiddleware.Queues;

namespace SessionMiddleware.Storage.Sqlite;

/// <summary>
/// Group commit: every write of this process goes through one queue. A single writer takes all the writes that are
/// waiting at that moment and runs them in one <c>BEGIN IMMEDIATE</c> transaction on one connection, each in its own
/// savepoint (a failing write is rolled back alone), then commits once and answers every caller. Each caller still
/// waits for its own commit, so nothing is acknowledged before it is in the database; SQLite just does one commit
/// (one lock, one WAL append) for many writes. A write of one statement needs no savepoint: SQLite undoes a failed
/// statement by itself. Other processes meet SQLite's busy handler at <c>BEGIN IMMEDIATE</c>.
/// <para>
/// A caller whose token is cancelled (the request's <c>IOTimeout</c>) is answered at once, however long the writer still
/// waits for the lock, and its write is then never run: the writer starts a write only while its caller still waits, so
/// a write is either answered with its result after the commit or with the cancellation and not stored.
/// </para>
/// </summary>
internal sealed class SqliteWriteQueue : BatchLoop<SqliteWriteOperation>
{
    // SQLITE_BUSY: the busy handler gave up waiting for another connection's lock.
    private const int SQLiteBusy = 5;

    /// <summary>The most writes in one transaction, so that one commit never holds the lock for long.</summary>
    public const int MaxBatch = 128;

    private readonly Func<CancellationToken, Task<SqliteConnection>> _open;
    private readonly ILogger _logger;
    private readonly Action<int>? _batchRun;
    private SqliteConnection? _connection;

    /// <summary>Told of every group commit, to keep its rows current (<see cref="SqliteRowCache"/>); null without a row cache.</summary>
    public SqliteRowCache? RowCache { get; init; }

    /// <summary>Runs on the writer's connection before each group transaction (the checkpointer's hard WAL cap).</summary>
    public Func<SqliteConnection, Task>? BeforeBatch { get; set; }

    /// <param name="open">Opens the writer's connection.</param>
    /// <param name="logger">Where failed batches are logged.</param>
    /// <param name="batchRun">Told the size of each group transaction run (the write-batch metric).</param>
    public SqliteWriteQueue(Func<CancellationToken, Task<SqliteConnection>> open, ILogger logger, Action<int>? batchRun = null)
        : base(Channel.CreateUnbounded<SqliteWriteOperation>(new UnboundedChannelOptions { SingleReader = true }), MaxBatch)
    {
        _open = open;
        _batchRun = batchRun;
        _logger = logger;
        // Once the wait runs out the writer is cancelled, and DisposeAsync returns at once (the loop ends on its own).
        CancelTimeout = TimeSpan.Zero;
        Start();
    }

    /// <summary>How long <see cref="BatchLoop{T}.DisposeAsync"/> waits for the writes in progress before it cancels the write loop.</summary>
    internal TimeSpan DisposeTimeout { get => DrainTimeout; init => DrainTimeout = value; }

    /// <summary>Runs <paramref name="work"/> inside the next group transaction and returns its result once that transaction committed.</summary>
    /// <param name="work">The write: its statements run inside the group transaction.</param>
    /// <param name="singleStatement">
    /// True when <paramref name="work"/> changes the database with at most one statement: SQLite already undoes a failed
    /// statement on its own, so no savepoint is needed around it. False for writes of several statements.
    /// </param>
    /// <param name="cancellationToken">
    /// Cancels the write until the writer starts it (in the queue, or while the group transaction waits for the lock):
    /// the caller is answered at once and the write is not run. Once started, the write's statements get the token too.
    /// </param>
    /// <param name="committed">What the committed write changed of the rows <see cref="RowCache"/> keeps; null empties it.</param>
    public Task<T> WriteAsync<T>(Func<SqliteConnection, SqliteTransaction, CancellationToken, Task<T>> work, bool singleStatement, CancellationToken cancellationToken, Action<T>? committed = null)
    {
        return Enqueue(new SqliteWriteOperation<T>(work, singleStatement, cancellationToken) { Committed = committed });
    }

    /// <summary>
    /// Runs <paramref name="work"/> on the writer's connection outside any transaction, between two group transactions,
    /// while no write of this process runs (the checkpointer's last step, which only completes when no commit appends to
    /// the WAL meanwhile).
    /// </summary>
    public Task<T> RunAloneAsync<T>(Func<SqliteConnection, CancellationToken, Task<T>> work, CancellationToken cancellationToken)
    {
        return Enqueue(new SqliteWriteOperation<T>((connection, _, token) => work(connection, token), singleStatement: true, cancellationToken) { Alone = true });
    }

    /// <summary>
    /// Closes the writer's connection after the writes queued before this call (the next write opens a new one): for
    /// tests that need the database file with no connection open. The writer otherwise keeps its connection, so that the
    /// statements prepared on it are reused from one group transaction to the next.
    /// </summary>
    public Task ReleaseConnectionAsync()
    {
        var operation = new SqliteWriteOperation<bool>((_, _, _) => Task.FromResult(true), singleStatement: true, CancellationToken.None) { Alone = true, ReleasesConnection = true };
        if (!TryWrite(operation))
        {
            return Task.CompletedTask;
        }

        return operation.Task;
    }

    private Task<T> Enqueue<T>(SqliteWriteOperation<T> operation)
    {
        if (!TryWrite(operation))
        {
            throw ShuttingDown();
        }

        operation.AnswerWhenCancelled();
        return operation.Task;
    }

    /// <summary>An operation to run alone ends the batch: it runs after the writes queued before it, before those queued after it.</summary>
    protected override bool Take(SqliteWriteOperation item, List<SqliteWriteOperation> batch)
    {
        batch.Add(item);
        return !item.Alone;
    }

    protected override async Task RunBatchAsync(List<SqliteWriteOperation> batch, CancellationToken stopping)
    {
        SqliteWriteOperation? alone = null;
        if (batch[^1].Alone)
        {
            alone = batch[^1];
            batch.RemoveAt(batch.Count - 1);
        }

        try
        {
            var connection = _connection ??= await _open(stopping).ConfigureAwait(false);
            if (batch.Count > 0)
            {
                _batchRun?.Invoke(batch.Count);
                if (BeforeBatch is { } beforeBatch)
                {
                    await beforeBatch(connection).ConfigureAwait(false);
                }

                await CommitAsync(connection, batch, RowCache, _logger, stopping).ConfigureAwait(false);
            }

            if (alone is not null && alone.TryStart())
            {
                await alone.RunAsync(connection, null!).ConfigureAwait(false);
                if (alone.ReleasesConnection)
                {
                    await CloseConnectionAsync().ConfigureAwait(false);
                }

                alone.Finish();
            }
        }
        catch (Exception ex)
        {
            // BEGIN or COMMIT failed (lock held too long, disk full, …): none of the batch is stored; the loop fails its writes.
            alone?.Fail(ex);
            await CloseConnectionAsync().ConfigureAwait(false);
            throw;
        }
    }

    protected override Exception Failed(List<SqliteWriteOperation> batch, Exception exception)
    {
        Log.WriteBatchFailed(_logger, batch.Count, exception);
        return exception;
    }

    protected override ValueTask EndAsync() => CloseConnectionAsync();

    private async ValueTask CloseConnectionAsync()
    {
        if (_connection is not null)
        {
            await _connection.DisposeAsync().ConfigureAwait(false);
            _connection = null;
        }
    }

    private static async Task CommitAsync(SqliteConnection connection, List<SqliteWriteOperation> batch, SqliteRowCache? rowCache, ILogger logger, CancellationToken stopping)
    {
        // Microsoft.Data.Sqlite begins with BEGIN IMMEDIATE: the write lock is taken at once (through the busy handler),
        // never upgraded later from a read lock. Callers that gave up meanwhile were answered; their writes are skipped.
        using var transaction = await BeginAsync(connection, batch, logger, stopping).ConfigureAwait(false);
        if (transaction is null)
        {
            return;
        }

        batch.RemoveAll(operation => !operation.TryStart());
        if (batch.Count == 1)
        {
            await batch[0].RunAsync(connection, transaction).ConfigureAwait(false);
            if (batch[0].Failed)
            {
                await transaction.RollbackAsync(CancellationToken.None).ConfigureAwait(false);
                batch[0].Finish();
                return;
            }
        }
        else
        {
            foreach (var operation in batch)
            {
                if (operation.SingleStatement)
                {
                    await operation.RunAsync(connection, transaction).ConfigureAwait(false);
                    if (operation.Failed)
                    {
                        // Without a savepoint, a write that failed after its statement ran cannot be undone alone: the whole
                        // transaction is, and the others run again without it (rare, so the common case keeps no savepoint).
                        await transaction.RollbackAsync(CancellationToken.None).ConfigureAwait(false);
                        operation.Finish();
                        await CommitAsync(connection, [.. batch.Where(o => !ReferenceEquals(o, operation))], rowCache, logger, stopping).ConfigureAwait(false);
                        return;
                    }

                    continue;
                }

                await transaction.SaveAsync("w", CancellationToken.None).ConfigureAwait(false);
                await operation.RunAsync(connection, transaction).ConfigureAwait(false);
                if (operation.Failed)
                {
                    await transaction.RollbackAsync("w", CancellationToken.None).ConfigureAwait(false);
                }

                await transaction.ReleaseAsync("w", CancellationToken.None).ConfigureAwait(false);
            }
        }

        await CommitAndAnswerAsync(connection, transaction, batch, rowCache).ConfigureAwait(false);
    }

    /// <summary>Commits the group transaction, tells the row cache what it changed, then answers every caller.</summary>
    private static async Task CommitAndAnswerAsync(SqliteConnection connection, SqliteTransaction transaction, List<SqliteWriteOperation> batch, SqliteRowCache? rowCache)
    {
        rowCache?.Committing();
        try
        {
            await transaction.CommitAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch
        {
            // The commit may or may not have happened: nothing the cache keeps is known to be current.
            rowCache?.Abandoned();
            throw;
        }

        rowCache?.Committed(connection, batch);
        foreach (var operation in batch)
        {
            operation.Finish();
        }
    }

    /// <summary>
    /// <c>BEGIN IMMEDIATE</c>, again while another process holds the write lock past <c>BusyTimeout</c> (SQLite's busy
    /// handler is not fair: with several processes writing flat out one can wait that long), for as long as a caller of
    /// the batch still waits; each caller's own token (<c>IOTimeout</c>) bounds its wait. <see langword="null"/> when every
    /// caller gave up meanwhile.
    /// </summary>
    private static async Task<SqliteTransaction?> BeginAsync(SqliteConnection connection, List<SqliteWriteOperation> batch, ILogger logger, CancellationToken stopping)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return (SqliteTransaction)await connection.BeginTransactionAsync(stopping).ConfigureAwait(false);
            }
            catch (SqliteException ex) when (ex.SqliteErrorCode == SQLiteBusy && !stopping.IsCancellationRequested)
            {
                if (batch.TrueForAll(operation => operation.IsAnswered))
                {
                    return null;
                }

                Log.WriteLockBusy(logger, batch.Count, attempt);
            }
        }
    }
}
