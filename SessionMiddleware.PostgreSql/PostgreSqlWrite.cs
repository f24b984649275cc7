using Npgsql;
using SessionMiddleware.Queues;
using SessionMiddleware.Storage;
using static SessionMiddleware.PostgreSql.PostgreSqlParameters;

namespace SessionMiddleware.PostgreSql;

/// <summary>One write waiting in the <see cref="PostgreSqlWriteQueue"/>: one statement and how its answer is made.</summary>
internal abstract class PostgreSqlWrite : IBatchItem
{
    /// <summary>The session key the statement writes (the batch's order).</summary>
    public abstract byte[] Key { get; }

    /// <summary>The statement, with its parameters; a fresh one for each run (a batch command belongs to one batch).</summary>
    public abstract NpgsqlBatchCommand Command { get; }

    /// <summary>The update's values when the write is a data update that may run grouped with others; otherwise null.</summary>
    public abstract GroupedUpdate? Update { get; }

    /// <summary>The new row when the write is a session's creation, which may run grouped with others; otherwise null.</summary>
    public abstract GroupedInsert? Insert { get; }

    /// <summary>The row count of the last <see cref="Command"/> made, once its batch ran.</summary>
    public abstract int RecordsAffected { get; }

    /// <summary>The caller has its answer already (cancelled while waiting): the write is not run.</summary>
    public abstract bool IsAnswered { get; }

    /// <summary>Answers the caller from the statement's row count, after the commit (may run a follow-up query).</summary>
    public abstract Task CompleteAsync(int rows, NpgsqlConnection connection, CancellationToken cancellationToken);

    /// <summary>Answers the caller with <paramref name="exception"/>.</summary>
    public abstract void Fail(Exception exception);
}

/// <summary>A write whose caller waits for a <typeparamref name="T"/>.</summary>
internal sealed class PostgreSqlWrite<T> : PostgreSqlWrite
{
    private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Func<NpgsqlBatchCommand> _command;
    private readonly Func<int, NpgsqlConnection, CancellationToken, ValueTask<T>> _answer;
    private readonly CancellationTokenRegistration _cancellation;
    private NpgsqlBatchCommand? _current;

    /// <param name="key">The session key written.</param>
    /// <param name="command">Makes the statement.</param>
    /// <param name="answer">Makes the caller's answer from the statement's row count (after the commit).</param>
    /// <param name="cancellationToken">The caller's token: cancelled while waiting, the write is dropped and the caller told so.</param>
    /// <param name="update">For a data update: its values, so that it may run grouped with the batch's other updates.</param>
    /// <param name="insert">For a creation: the new row, so that it may run grouped with the batch's other inserts.</param>
    public PostgreSqlWrite(byte[] key, Func<NpgsqlBatchCommand> command, Func<int, NpgsqlConnection, CancellationToken, ValueTask<T>> answer, CancellationToken cancellationToken, GroupedUpdate? update = null, GroupedInsert? insert = null)
    {
        Key = key;
        Update = update;
        Insert = insert;
        _command = command;
        _answer = answer;
        if (cancellationToken.CanBeCanceled)
        {
            // A cancelled caller stops waiting; its write may still be in a batch that commits (as a write whose answer
            // was lost on the network would): it is never reported as done when it was not.
            _cancellation = cancellationToken.Register(static state => ((PostgreSqlWrite<T>)state!).Cancel(), this);
            CancellationToken = cancellationToken;
        }
    }

    public override byte[] Key { get; }

    public override GroupedUpdate? Update { get; }

    public override GroupedInsert? Insert { get; }

    public override int RecordsAffected => _current!.RecordsAffected;

    public Task<T> Task => _completion.Task;

    public override bool IsAnswered => _completion.Task.IsCompleted;

    public override NpgsqlBatchCommand Command => _current = _command();

    private CancellationToken CancellationToken { get; }

    public override async Task CompleteAsync(int rows, NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        try
        {
            var result = await _answer(rows, connection, cancellationToken).ConfigureAwait(false);
            _cancellation.Dispose();
            _completion.TrySetResult(result);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            Fail(ex);
        }
    }

    public override void Fail(Exception exception)
    {
        _cancellation.Dispose();
        _completion.TrySetException(exception);
    }

    private void Cancel() => _completion.TrySetCanceled(CancellationToken);
}

/// <summary>
/// A data update's values (<see cref="SessionSql.Update"/>'s parameters besides the key): one of the arrays of
/// <see cref="PostgreSqlSessionSql.UpdateMany"/> when grouped, or a statement of its own (<see cref="ToCommand"/>).
/// </summary>
internal readonly record struct GroupedUpdate(byte[] Data, long ExpectedVersion, long? ExpiresAt, long Now, long IdleSeconds, long AbsoluteSeconds)
{
    /// <summary>The update alone: <paramref name="update"/> (<see cref="SessionSql.Update"/>) for <paramref name="key"/>.</summary>
    public NpgsqlBatchCommand ToCommand(string update, byte[] key) => Command(
        update,
        Bytes("Id", key),
        Bytes("Data", Data),
        Int64("ExpectedVersion", ExpectedVersion),
        Int64("ExpiresAt", ExpiresAt),
        Int64("Now", Now),
        Int64("IdleSeconds", IdleSeconds),
        Int64("AbsoluteSeconds", AbsoluteSeconds));
}

/// <summary>
/// A creation's row (<see cref="SessionSql.Insert"/>'s parameters): one of the arrays of
/// <see cref="PostgreSqlSessionSql.InsertMany"/> when grouped, or a statement of its own (<see cref="ToCommand"/>).
/// </summary>
internal readonly record struct GroupedInsert(NewSession Session, long Now, long ExpiresAt)
{
    /// <summary>The insert alone: <paramref name="insert"/> (<see cref="SessionSql.Insert"/>).</summary>
    public NpgsqlBatchCommand ToCommand(string insert) => Command(
        insert,
        Bytes("Id", Session.Key),
        Text("UserId", Session.UserId),
        Bytes("Data", Session.Data),
        Int64("Now", Now),
        Text("Ip", Session.IpAddress),
        Text("UserAgent", Session.UserAgent),
        Int64("ExpiresAt", ExpiresAt),
        Int64("SignedInAt", Session.SignIn?.At.ToUnixTimeSeconds()),
        Text("IdpIssuer", Session.SignIn?.Issuer),
        Text("IdpSid", Session.SignIn?.Sid),
        Text("IdpSubject", Session.SignIn?.Subject),
        Text("CredentialStamp", Session.SignIn?.CredentialStamp));
}
