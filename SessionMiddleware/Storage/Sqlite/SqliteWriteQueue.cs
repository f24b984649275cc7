using System.Threading.Channels;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using SessionMiddleware.Logging;

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
internal sealed class SqliteWriteQueue : IAsyncDisposable
{
    // SQLITE_BUSY: the busy handler gave up waiting for another connection's lock.
    private const int SQLiteBusy = 5;

    /// <summary>The most writes in one transaction, so that one commit never holds the lock for long.</summary>
    public const int MaxBatch = 128;

    private readonly Channel<WriteOperation> _channel = Channel.CreateUnbounded<WriteOperation>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Func<CancellationToken, Task<SqliteConnection>> _open;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _loop;
    private readonly Action<int>? _batchRun;

    /// <summary>Runs on the writer's connection before each group transaction (the checkpointer's hard WAL cap).</summary>
    public Func<SqliteConnection, Task>? BeforeBatch { get; set; }

    /// <param name="open">Opens the writer's connection.</param>
    /// <param name="logger">Where failed batches are logged.</param>
    /// <param name="batchRun">Told the size of each group transaction run (the write-batch metric).</param>
    public SqliteWriteQueue(Func<CancellationToken, Task<SqliteConnection>> open, ILogger logger, Action<int>? batchRun = null)
    {
        _open = open;
        _batchRun = batchRun;
        _logger = logger;
        _loop = Task.Run(RunAsync);
    }

    /// <summary>How long <see cref="DisposeAsync"/> waits for the writes in progress before it cancels the write loop.</summary>
    internal TimeSpan DisposeTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The write loop (for tests: it ends without an error once the queue is disposed).</summary>
    internal Task Completion => _loop;

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
    public Task<T> WriteAsync<T>(Func<SqliteConnection, SqliteTransaction, CancellationToken, Task<T>> work, bool singleStatement, CancellationToken cancellationToken)
    {
        return Enqueue(new WriteOperation<T>(work, singleStatement, cancellationToken));
    }

    /// <summary>
    /// Runs <paramref name="work"/> on the writer's connection outside any transaction, between two group transactions,
    /// while no write of this process runs (the checkpointer's last step, which only completes when no commit appends to
    /// the WAL meanwhile).
    /// </summary>
    public Task<T> RunAloneAsync<T>(Func<SqliteConnection, CancellationToken, Task<T>> work, CancellationToken cancellationToken)
    {
        return Enqueue(new WriteOperation<T>((connection, _, token) => work(connection, token), singleStatement: true, cancellationToken) { Alone = true });
    }

    /// <summary>
    /// Closes the writer's connection after the writes queued before this call (the next write opens a new one): for
    /// tests that need the database file with no connection open. The writer otherwise keeps its connection, so that the
    /// statements prepared on it are reused from one group transaction to the next.
    /// </summary>
    public Task ReleaseConnectionAsync()
    {
        var operation = new WriteOperation<bool>((_, _, _) => Task.FromResult(true), singleStatement: true, CancellationToken.None) { Alone = true, ReleasesConnection = true };
        if (!_channel.Writer.TryWrite(operation))
        {
            return Task.CompletedTask;
        }

        return operation.Task;
    }

    private Task<T> Enqueue<T>(WriteOperation<T> operation)
    {
        if (!_channel.Writer.TryWrite(operation))
        {
            throw new ObjectDisposedException(nameof(SqliteWriteQueue), "The session store is shutting down.");
        }

        operation.AnswerWhenCancelled();
        return operation.Task;
    }

    public async ValueTask DisposeAsync()
    {
        _channel.Writer.TryComplete();
        try
        {
            await _loop.WaitAsync(DisposeTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // A write outlasted the wait: the loop still runs and reads the token, so the source is disposed only once it ends.
            await _stopping.CancelAsync().ConfigureAwait(false);
            _ = _loop.ContinueWith(static (_, stopping) => ((CancellationTokenSource)stopping!).Dispose(), _stopping, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            return;
        }

        _stopping.Dispose();
    }

    private async Task RunAsync()
    {
        SqliteConnection? connection = null;
        var batch = new List<WriteOperation>(MaxBatch);
        try
        {
            while (await _channel.Reader.WaitToReadAsync(_stopping.Token).ConfigureAwait(false))
            {
                batch.Clear();
                WriteOperation? alone = null;
                while (batch.Count < MaxBatch && alone is null && _channel.Reader.TryRead(out var operation))
                {
                    if (operation.Abandoned)
                    {
                        // Its caller was answered with the cancellation already.
                        continue;
                    }

                    if (operation.Alone)
                    {
                        // Runs after the writes queued before it, before those queued after it.
                        alone = operation;
                    }
                    else
                    {
                        batch.Add(operation);
                    }
                }

                if (batch.Count == 0 && alone is null)
                {
                    continue;
                }

                try
                {
                    connection ??= await _open(_stopping.Token).ConfigureAwait(false);
                    if (batch.Count > 0)
                    {
                        _batchRun?.Invoke(batch.Count);
                        if (BeforeBatch is { } beforeBatch)
                        {
                            await beforeBatch(connection).ConfigureAwait(false);
                        }

                        await RunBatchAsync(connection, batch, _logger, _stopping.Token).ConfigureAwait(false);
                    }

                    if (alone is not null && alone.TryStart())
                    {
                        await alone.RunAsync(connection, null!).ConfigureAwait(false);
                        if (alone.ReleasesConnection)
                        {
                            await connection.DisposeAsync().ConfigureAwait(false);
                            connection = null;
                        }

                        alone.Finish();
                        alone = null;
                    }
                }
                catch (Exception ex)
                {
                    // BEGIN or COMMIT failed (lock held too long, disk full, …): none of the batch is stored.
                    Log.WriteBatchFailed(_logger, batch.Count, ex);
                    foreach (var operation in batch)
                    {
                        operation.Finish(ex);
                    }

                    alone?.Finish(ex);

                    if (connection is not null)
                    {
                        await connection.DisposeAsync().ConfigureAwait(false);
                        connection = null;
                    }
                }
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Disposed while waiting.
        }
        finally
        {
            if (connection is not null)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }

            while (_channel.Reader.TryRead(out var left))
            {
                left.Finish(new ObjectDisposedException(nameof(SqliteWriteQueue), "The session store is shutting down."));
            }
        }
    }

    private static async Task RunBatchAsync(SqliteConnection connection, List<WriteOperation> batch, ILogger logger, CancellationToken stopping)
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
                        await RunBatchAsync(connection, [.. batch.Where(o => !ReferenceEquals(o, operation))], logger, stopping).ConfigureAwait(false);
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

        await transaction.CommitAsync(CancellationToken.None).ConfigureAwait(false);
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
    private static async Task<SqliteTransaction?> BeginAsync(SqliteConnection connection, List<WriteOperation> batch, ILogger logger, CancellationToken stopping)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return (SqliteTransaction)await connection.BeginTransactionAsync(stopping).ConfigureAwait(false);
            }
            catch (SqliteException ex) when (ex.SqliteErrorCode == SQLiteBusy && !stopping.IsCancellationRequested)
            {
                if (batch.TrueForAll(operation => operation.Abandoned))
                {
                    return null;
                }

                Log.WriteLockBusy(logger, batch.Count, attempt);
            }
        }
    }

    private abstract class WriteOperation(bool singleStatement, CancellationToken cancellationToken)
    {
        private const int Waiting = 0, Started = 1, Cancelled = 2;
        private int _state;

        public CancellationToken CancellationToken { get; } = cancellationToken;

        /// <summary>The caller was answered with its cancellation before the writer started the write.</summary>
        public bool Abandoned => Volatile.Read(ref _state) == Cancelled;

        public bool SingleStatement { get; } = singleStatement;

        /// <summary>Runs alone, outside any transaction (<see cref="RunAloneAsync"/>).</summary>
        public bool Alone { get; init; }

        /// <summary>The writer closes its connection after this (alone) operation (<see cref="ReleaseConnectionAsync"/>).</summary>
        public bool ReleasesConnection { get; init; }

        public abstract bool Failed { get; }

        /// <summary>
        /// The writer is about to run the write: false when its caller was answered with the cancellation. True again for
        /// a write already started (a batch that rolled back runs its other writes again).
        /// </summary>
        public bool TryStart() => Interlocked.CompareExchange(ref _state, Started, Waiting) != Cancelled;

        /// <summary>Answers the caller when its token is cancelled before the writer started the write.</summary>
        public void AnswerWhenCancelled()
        {
            if (CancellationToken.CanBeCanceled)
            {
                Registration = CancellationToken.UnsafeRegister(static state => ((WriteOperation)state!).Cancel(), this);
            }
        }

        protected CancellationTokenRegistration Registration { get; private set; }

        private void Cancel()
        {
            if (Interlocked.CompareExchange(ref _state, Cancelled, Waiting) == Waiting)
            {
                Finish(new OperationCanceledException(CancellationToken));
            }
        }

        /// <summary>Runs the work; an exception is kept for <see cref="Finish()"/>, not thrown.</summary>
        public abstract Task RunAsync(SqliteConnection connection, SqliteTransaction transaction);

        /// <summary>Answers the caller with the work's result or exception (after the commit).</summary>
        public abstract void Finish();

        /// <summary>Answers the caller with <paramref name="exception"/> (the batch failed).</summary>
        public abstract void Finish(Exception exception);
    }

    private sealed class WriteOperation<T>(Func<SqliteConnection, SqliteTransaction, CancellationToken, Task<T>> work, bool singleStatement, CancellationToken cancellationToken)
        : WriteOperation(singleStatement, cancellationToken)
    {
        private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T _result = default!;
        private Exception? _exception;

        public Task<T> Task => _completion.Task;

        public override bool Failed => _exception is not null;

        public override async Task RunAsync(SqliteConnection connection, SqliteTransaction transaction)
        {
            _exception = null;
            try
            {
                _result = await work(connection, transaction, CancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                _exception = ex;
            }
        }

        public override void Finish()
        {
            Registration.Dispose();
            if (_exception is not null)
            {
                _completion.TrySetException(_exception);
            }
            else
            {
                _completion.TrySetResult(_result);
            }
        }

        public override void Finish(Exception exception)
        {
            Registration.Dispose();
            _completion.TrySetException(exception);
        }
    }
}
