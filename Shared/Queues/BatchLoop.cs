using System.Threading.Channels;

namespace SessionMiddleware.Queues;

/// <summary>How long a stopping <see cref="BatchLoop{T}"/> waits, unless its queue says otherwise.</summary>
internal static class BatchLoop
{
    /// <summary>How long a stopping queue's loop may take to run what is queued before it is cancelled.</summary>
    public static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a cancelled loop may take to end: Npgsql asks the server to cancel the statement and, when the server
    /// does not answer within its cancellation timeout (2 s by default), breaks the connection.
    /// </summary>
    public static readonly TimeSpan CancelTimeout = TimeSpan.FromSeconds(10);
}

/// <summary>
/// The single reader of a queue's channel: it waits for an item, drains what waits at that moment into a batch
/// (<see cref="Take"/> decides, up to the queue's batch size), runs the batch (<see cref="RunBatchAsync"/>), then the
/// next. When a batch's run throws, every item of the batch fails with the exception (<see cref="Failed"/> may make it
/// clearer), so no caller waits for ever, and the loop goes on. A queue derives from it, keeps only what a batch does,
/// and calls <see cref="Start"/> at the end of its constructor.
/// </summary>
/// <typeparam name="T">The queue's item.</typeparam>
internal abstract class BatchLoop<T> : IAsyncDisposable
    where T : class, IBatchItem
{
    private readonly Channel<T> _channel;
    private readonly int _maxBatch;
    private readonly CancellationTokenSource _stopping = new();
    private Task _loop = Task.CompletedTask;
    private volatile bool _completed;

    /// <param name="channel">The queue's channel; this loop is its only reader.</param>
    /// <param name="maxBatch">The most items in one batch.</param>
    protected BatchLoop(Channel<T> channel, int maxBatch)
    {
        _channel = channel;
        _maxBatch = maxBatch;
        // Read once, here: the loop and its batches never touch the source, which is disposed only once the loop ended.
        Stopping = _stopping.Token;
    }

    /// <summary>How long <see cref="DisposeAsync"/> lets the loop run what is queued before it cancels it.</summary>
    internal TimeSpan DrainTimeout { get; init; } = BatchLoop.DrainTimeout;

    /// <summary>How long <see cref="DisposeAsync"/> waits for the cancelled loop to end.</summary>
    internal TimeSpan CancelTimeout { get; init; } = BatchLoop.CancelTimeout;

    /// <summary>The loop (for tests: it ends without an error once the queue is disposed).</summary>
    internal Task Completion => _loop;

    /// <summary>Cancelled when a stopping queue gave up waiting for its batches (<see cref="DrainTimeout"/>).</summary>
    protected CancellationToken Stopping { get; }

    /// <summary>The queue takes no more items (<see cref="Complete"/>).</summary>
    protected bool IsCompleted => _completed;

    /// <summary>Queues <paramref name="item"/>; false once the queue takes no more (or a bounded channel is full).</summary>
    protected bool TryWrite(T item) => _channel.Writer.TryWrite(item);

    /// <summary>The failure of an item the stopping queue never ran.</summary>
    protected ObjectDisposedException ShuttingDown() => new(GetType().Name, "The session store is shutting down.");

    /// <summary>Starts the loop; the queue calls it last in its constructor, once its own fields are set.</summary>
    protected void Start() => _loop = Task.Run(RunAsync);

    /// <summary>Takes no more items; those queued still run.</summary>
    public void Complete()
    {
        _completed = true;
        _channel.Writer.TryComplete();
    }

    /// <summary>
    /// Stops the queue: takes no more items, lets the loop run what is queued for up to <see cref="DrainTimeout"/>, then
    /// cancels <see cref="Stopping"/> and waits up to <see cref="CancelTimeout"/> for the loop to end. The token source
    /// is disposed once the loop ended (later, by the loop's end, when it outlives the wait): the loop reads its token.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        Complete();
        await _loop.WaitAsync(DrainTimeout).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (!_loop.IsCompleted)
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
            await _loop.WaitAsync(CancelTimeout).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (_loop.IsCompleted)
        {
            _stopping.Dispose();
        }
        else
        {
            _ = _loop.ContinueWith(static (_, stopping) => ((CancellationTokenSource)stopping!).Dispose(), _stopping, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    /// <summary>Runs before each batch is drained, once an item waits (the load queue waits for a free slot here).</summary>
    protected virtual ValueTask BeforeBatchAsync(CancellationToken stopping) => ValueTask.CompletedTask;

    /// <summary>
    /// Puts <paramref name="item"/> (not answered yet) into <paramref name="batch"/>, or elsewhere; false ends the
    /// batch after it.
    /// </summary>
    protected virtual bool Take(T item, List<T> batch)
    {
        batch.Add(item);
        return true;
    }

    /// <summary>Runs one batch and answers its items; the list is reused for the next batch once this completes.</summary>
    protected abstract Task RunBatchAsync(List<T> batch, CancellationToken stopping);

    /// <summary>A batch's run threw: the exception every item of <paramref name="batch"/> gets (the queue may log here).</summary>
    protected virtual Exception Failed(List<T> batch, Exception exception) => exception;

    /// <summary>Runs when the loop ends, before the items left in the channel fail: the queue ends what it started.</summary>
    protected virtual ValueTask EndAsync() => ValueTask.CompletedTask;

    private async Task RunAsync()
    {
        var reader = _channel.Reader;
        var batch = new List<T>(_maxBatch);
        try
        {
            while (await reader.WaitToReadAsync(Stopping).ConfigureAwait(false))
            {
                await BeforeBatchAsync(Stopping).ConfigureAwait(false);
                batch.Clear();
                while (batch.Count < _maxBatch && reader.TryRead(out var item))
                {
                    if (!item.IsAnswered && !Take(item, batch))
                    {
                        break;
                    }
                }

                if (batch.Count == 0)
                {
                    continue;
                }

                try
                {
                    await RunBatchAsync(batch, Stopping).ConfigureAwait(false);
                }
                catch (Exception ex)
                {
                    var failure = Failed(batch, ex);
                    foreach (var item in batch)
                    {
                        item.Fail(failure);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (Stopping.IsCancellationRequested)
        {
            // Stopped while waiting.
        }
        finally
        {
            await EndAsync().ConfigureAwait(false);
            while (reader.TryRead(out var left))
            {
                left.Fail(ShuttingDown());
            }
        }
    }
}
