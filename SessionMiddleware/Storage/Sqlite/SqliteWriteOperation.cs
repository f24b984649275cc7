using Microsoft.Data.Sqlite;
using SessionMiddleware.Queues;

namespace SessionMiddleware.Storage.Sqlite;

/// <summary>
/// One write waiting in the <see cref="SqliteWriteQueue"/>: its work, and its caller's answer, given after the commit
/// or, when the caller's token is cancelled before the writer started it, at once (the write is then never run).
/// </summary>
internal abstract class SqliteWriteOperation(bool singleStatement, CancellationToken cancellationToken) : IBatchItem
{
    private const int Waiting = 0, Started = 1, Cancelled = 2;
    private int _state;

    public CancellationToken CancellationToken { get; } = cancellationToken;

    /// <summary>The caller was answered with its cancellation before the writer started the write.</summary>
    public bool IsAnswered => Volatile.Read(ref _state) == Cancelled;

    public bool SingleStatement { get; } = singleStatement;

    /// <summary>Runs alone, outside any transaction (<see cref="SqliteWriteQueue.RunAloneAsync"/>).</summary>
    public bool Alone { get; init; }

    /// <summary>The writer closes its connection after this (alone) operation (<see cref="SqliteWriteQueue.ReleaseConnectionAsync"/>).</summary>
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
            Registration = CancellationToken.UnsafeRegister(static state => ((SqliteWriteOperation)state!).Cancel(), this);
        }
    }

    protected CancellationTokenRegistration Registration { get; private set; }

    private void Cancel()
    {
        if (Interlocked.CompareExchange(ref _state, Cancelled, Waiting) == Waiting)
        {
            Fail(new OperationCanceledException(CancellationToken));
        }
    }

    /// <summary>Runs the work; an exception is kept for <see cref="Finish()"/>, not thrown.</summary>
    public abstract Task RunAsync(SqliteConnection connection, SqliteTransaction transaction);

    /// <summary>Answers the caller with the work's result or exception (after the commit).</summary>
    public abstract void Finish();

    /// <summary>
    /// After the commit, inside <see cref="SqliteRowCache.Committed"/>: applies what the write changed to the row cache;
    /// false when the write declared nothing (the cache is then emptied).
    /// </summary>
    public abstract bool ApplyCommitted();

    /// <summary>Answers the caller with <paramref name="exception"/> (the batch failed).</summary>
    public abstract void Fail(Exception exception);
}

internal sealed class SqliteWriteOperation<T>(Func<SqliteConnection, SqliteTransaction, CancellationToken, Task<T>> work, bool singleStatement, CancellationToken cancellationToken)
    : SqliteWriteOperation(singleStatement, cancellationToken)
{
    /// <summary>What the committed write changed of the rows the row cache may keep, given the write's result.</summary>
    public Action<T>? Committed { get; init; }

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

    public override bool ApplyCommitted()
    {
        if (Committed is null)
        {
            return false;
        }

        Committed(_result);
        return true;
    }

    public override void Fail(Exception exception)
    {
        Registration.Dispose();
        _completion.TrySetException(exception);
    }
}
