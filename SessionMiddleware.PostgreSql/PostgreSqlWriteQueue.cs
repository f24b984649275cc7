using System.Data;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;
using SessionMiddleware.Queues;
using SessionMiddleware.Storage;
using static SessionMiddleware.PostgreSql.PostgreSqlParameters;

namespace SessionMiddleware.PostgreSql;

/// <summary>
/// Group commit: the session writes of this process (create, update, touch, renew, delete) go through one queue. A
/// single writer takes every write waiting at that moment and sends them as one <see cref="NpgsqlBatch"/>: one round
/// trip, one implicit transaction, so one WAL flush for all of them. Each caller still waits for that commit, so
/// nothing is acknowledged before it is durable.
/// <para>
/// Every write is one statement whose effect is read from its row count. When a statement fails, PostgreSQL rolls the
/// whole batch back; the writer then runs each write of the batch alone, so that only the failing one fails and the
/// others get exactly the answer they would have had without the queue. A batch of several keys first locks all their
/// rows in key order (<see cref="PostgreSqlSessionSql.LockKeys"/>), so that two nodes' batches lock rows in the same
/// order and never wait for each other in a cycle; its writes then run in key order (writes to one key keep their order).
/// </para>
/// </summary>
internal sealed class PostgreSqlWriteQueue : BatchLoop<PostgreSqlWrite>
{
    /// <summary>The most writes in one batch.</summary>
    public const int MaxBatch = 128;

    /// <summary>
    /// How long a batch waits for a row lock another transaction holds (<c>lock_timeout</c>, set for each batch's
    /// transaction). Past it the batch fails with lock_not_available and its writes run alone: only the locked row's
    /// write then waits, on a connection of its own, for as long as the connection string's command timeout allows.
    /// </summary>
    public static readonly TimeSpan LockTimeout = TimeSpan.FromMilliseconds(200);

    /// <summary>The most writes waiting for locked rows at once, each on a connection of its own.</summary>
    public const int MaxLockWaits = 4;

    /// <summary>SQLSTATE lock_not_available: <c>lock_timeout</c> ran out.</summary>
    private const string LockNotAvailable = "55P03";

    private static readonly string SetLockTimeout = $"SELECT set_config('lock_timeout', '{(int)LockTimeout.TotalMilliseconds}ms', true);";

    /// <summary>
    /// The most writes waiting for the writer. Past it, while the database does not answer (a hung connection with
    /// <c>Command Timeout=0</c>), a write fails at once rather than holding its data in memory for ever.
    /// </summary>
    public const int MaxQueued = 10_000;

    /// <summary>The most writes waiting for locked rows (<see cref="MaxLockWaits"/> of them at the server); past it a write of a locked row fails at once.</summary>
    public const int MaxLockWaitsQueued = 1_000;

    private readonly NpgsqlDataSource _dataSource;
    private readonly ILogger _logger;
    private readonly string _updateMany;
    private readonly string _insertMany;
    private readonly string _lockKeys;
    private readonly string _lockedKeys;
    private readonly SemaphoreSlim _lockWaitSlots = new(MaxLockWaits, MaxLockWaits);
    private readonly HashSet<Task> _lockWaits = [];
    private readonly Dictionary<byte[], int> _waitingKeys = new(SessionKeyComparer.Instance);
    private NpgsqlConnection? _connection;

    /// <param name="dataSource">Where the writer takes its connection.</param>
    /// <param name="logger">Where failed batches are logged.</param>
    /// <param name="updateMany">The statement that runs a batch's updates as one (<see cref="PostgreSqlSessionSql.UpdateMany"/>).</param>
    /// <param name="insertMany">The statement that runs a batch's inserts as one (<see cref="PostgreSqlSessionSql.InsertMany"/>).</param>
    /// <param name="lockKeys">The statement that locks a batch's rows in key order (<see cref="PostgreSqlSessionSql.LockKeys"/>).</param>
    /// <param name="lockedKeys">The statement that finds which of a batch's rows other transactions hold (<see cref="PostgreSqlSessionSql.LockedKeys"/>).</param>
    /// <param name="drainTimeout">How long a stopping queue runs what is queued (<see cref="BatchLoop.DrainTimeout"/> when null).</param>
    public PostgreSqlWriteQueue(NpgsqlDataSource dataSource, ILogger logger, string updateMany, string insertMany, string lockKeys, string lockedKeys, TimeSpan? drainTimeout = null)
        : base(Channel.CreateBounded<PostgreSqlWrite>(new BoundedChannelOptions(MaxQueued) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait }), MaxBatch)
    {
        _lockKeys = lockKeys;
        _lockedKeys = lockedKeys;
        DrainTimeout = drainTimeout ?? BatchLoop.DrainTimeout;
        _dataSource = dataSource;
        _logger = logger;
        _updateMany = updateMany;
        _insertMany = insertMany;
        Start();
    }

    /// <summary>Runs <paramref name="write"/> in the next batch; completes once the batch committed (or the write failed).</summary>
    public Task<T> WriteAsync<T>(PostgreSqlWrite<T> write)
    {
        if (!TryWrite(write))
        {
            throw IsCompleted
                ? ShuttingDown()
                : new InvalidOperationException($"The session store's writer is behind: {MaxQueued} session writes wait for PostgreSQL, which does not answer.");
        }

        return write.Task;
    }

    /// <summary>A write of a key whose row is locked still waits with the earlier write of its key, not in the batch.</summary>
    protected override bool Take(PostgreSqlWrite item, List<PostgreSqlWrite> batch)
    {
        if (IsWaitingForLock(item.Key))
        {
            WaitForLock(item);
        }
        else
        {
            batch.Add(item);
        }

        return true;
    }

    protected override async Task RunBatchAsync(List<PostgreSqlWrite> batch, CancellationToken stopping)
    {
        for (var rerun = false; ; rerun = true)
        {
            try
            {
                _connection ??= await _dataSource.OpenConnectionAsync(stopping).ConfigureAwait(false);
                await RunBatchAsync(_connection, batch).ConfigureAwait(false);
                return;
            }
            catch (Exception ex)
            {
                // The connection or the server failed (not one statement): the next batch opens a new connection.
                var lost = _connection is not null && IsConnectionLost(_connection, ex);
                await CloseConnectionAsync().ConfigureAwait(false);

                // A connection the server ended (restart, failover, pg_terminate_backend) or that broke: the writes not
                // yet answered run once more on a new connection. A write whose commit was lost with the connection reruns
                // as any second try would: an update as a version conflict (its session re-reads and re-applies its
                // change), a creation as a duplicate key; never as a success twice.
                batch.RemoveAll(w => w.IsAnswered);
                if (!lost || rerun || batch.Count == 0 || stopping.IsCancellationRequested)
                {
                    throw;
                }

                Log.PostgreSqlWriteConnectionLost(_logger, batch.Count, ex);
            }
        }
    }

    /// <summary>Whether the batch committed is unknown, so every write of it fails.</summary>
    protected override Exception Failed(List<PostgreSqlWrite> batch, Exception exception)
    {
        var failure = Stopping.IsCancellationRequested ? Stopped(exception) : exception;
        Log.PostgreSqlWriteBatchFailed(_logger, batch.Count, failure);
        return failure;
    }

    /// <summary>The writes waiting for locked rows end too (answered, or cancelled with the loop) before the loop ends.</summary>
    protected override async ValueTask EndAsync()
    {
        await CloseConnectionAsync().ConfigureAwait(false);
        Task[] waits;
        lock (_lockWaits)
        {
            waits = [.. _lockWaits];
        }

        await Task.WhenAll(waits).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private async ValueTask CloseConnectionAsync()
    {
        if (_connection is not null)
        {
            await _connection.DisposeAsync().ConfigureAwait(false);
            _connection = null;
        }
    }

    /// <summary>The failure of a write the store's shutdown cancelled: the database had not finished it within the drain timeout.</summary>
    private InvalidOperationException Stopped(Exception cancelled) => new(
        $"The session store stopped before this write was stored: the database did not finish it within the shutdown's drain timeout ({DrainTimeout.TotalSeconds:0.###} s), and it was cancelled.",
        cancelled);

    private async Task RunBatchAsync(NpgsqlConnection connection, List<PostgreSqlWrite> batch)
    {
        if (batch.Count > 1)
        {
            // Stable: writes to one key keep their order.
            var ordered = batch.OrderBy(w => w.Key, SessionKeyComparer.Instance).ToList();
            batch.Clear();
            batch.AddRange(ordered);
        }

        try
        {
            await ExecuteAsync(connection, batch).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (batch.Count > 1 && !IsConnectionLost(connection, ex))
        {
            // A statement failed (a duplicate key, a deadlock with another node, …): PostgreSQL rolled the whole batch
            // back, so none of it is stored. Each write runs again alone and gets its own answer.
            Log.PostgreSqlWriteBatchRetried(_logger, batch.Count, ex.SqlState);
            var rest = batch;
            if (ex.SqlState == LockNotAvailable)
            {
                // Another transaction holds some of the rows: their writes wait on their own, the rest run again at once
                // (alone, as after any failed batch: a lock taken meanwhile then delays one write, not the batch).
                var locked = await LockedKeysAsync(connection, batch).ConfigureAwait(false);
                rest = [];
                foreach (var write in batch)
                {
                    if (locked is null || locked.Contains(write.Key))
                    {
                        WaitForLock(write);
                    }
                    else
                    {
                        rest.Add(write);
                    }
                }
            }

            foreach (var write in rest)
            {
                try
                {
                    await ExecuteAsync(connection, [write]).ConfigureAwait(false);
                }
                catch (PostgresException single) when (single.SqlState == LockNotAvailable)
                {
                    WaitForLock(write);
                }
                catch (PostgresException single) when (!IsConnectionLost(connection, single))
                {
                    write.Fail(single);
                }
            }

            return;
        }
        catch (PostgresException ex) when (ex.SqlState == LockNotAvailable)
        {
            WaitForLock(batch[0]);
        }
        catch (PostgresException ex) when (!IsConnectionLost(connection, ex))
        {
            batch[0].Fail(ex);
        }
    }

    /// <summary>
    /// The keys of <paramref name="batch"/> whose rows another transaction holds locked (<see cref="PostgreSqlSessionSql.LockedKeys"/>),
    /// or null when the table itself is locked (the question timed out too).
    /// </summary>
    private async Task<HashSet<byte[]>?> LockedKeysAsync(NpgsqlConnection connection, List<PostgreSqlWrite> batch)
    {
        var command = new NpgsqlBatch(connection);
        await using (command.ConfigureAwait(false))
        {
            command.BatchCommands.Add(new NpgsqlBatchCommand(SetLockTimeout));
            command.BatchCommands.Add(Command(_lockedKeys, ArrayOf(DistinctKeys(batch), NpgsqlDbType.Bytea)));
            try
            {
                var locked = new HashSet<byte[]>(SessionKeyComparer.Instance);
                var reader = await command.ExecuteReaderAsync(Stopping).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    await reader.NextResultAsync(Stopping).ConfigureAwait(false);
                    while (await reader.ReadAsync(Stopping).ConfigureAwait(false))
                    {
                        locked.Add(reader.GetFieldValue<byte[]>(0));
                    }
                }

                return locked;
            }
            catch (PostgresException ex) when (ex.SqlState == LockNotAvailable)
            {
                return null;
            }
        }
    }

    private bool IsWaitingForLock(byte[] key)
    {
        lock (_lockWaits)
        {
            return _waitingKeys.Count > 0 && _waitingKeys.ContainsKey(key);
        }
    }

    /// <summary>
    /// Runs <paramref name="write"/>, whose row another transaction holds, alone on a connection of its own and without
    /// <see cref="LockTimeout"/>: it waits for the lock up to the command timeout while the writer goes on with the
    /// other writes.
    /// </summary>
    private void WaitForLock(PostgreSqlWrite write)
    {
        lock (_lockWaits)
        {
            if (_lockWaits.Count >= MaxLockWaitsQueued)
            {
                write.Fail(new InvalidOperationException($"The session's row is locked by another transaction, and {MaxLockWaitsQueued} session writes wait for locked rows already."));
                return;
            }

            _waitingKeys[write.Key] = _waitingKeys.GetValueOrDefault(write.Key) + 1;
        }

        Log.PostgreSqlWriteWaitsForLock(_logger);

        var wait = Task.Run(async () =>
        {
            try
            {
                await _lockWaitSlots.WaitAsync(Stopping).ConfigureAwait(false);
                try
                {
                    if (write.IsAnswered)
                    {
                        return;
                    }

                    var connection = await _dataSource.OpenConnectionAsync(Stopping).ConfigureAwait(false);
                    await using (connection.ConfigureAwait(false))
                    {
                        await ExecuteAsync(connection, [write], lockTimeout: false).ConfigureAwait(false);
                    }
                }
                finally
                {
                    _lockWaitSlots.Release();
                }
            }
            catch (Exception ex)
            {
                write.Fail(Stopping.IsCancellationRequested ? Stopped(ex) : ex);
            }
            finally
            {
                lock (_lockWaits)
                {
                    if (--CollectionsMarshal.GetValueRefOrNullRef(_waitingKeys, write.Key) == 0)
                    {
                        _waitingKeys.Remove(write.Key);
                    }
                }
            }
        });
        lock (_lockWaits)
        {
            _lockWaits.Add(wait);
        }

        _ = wait.ContinueWith(
            (done, state) =>
            {
                var waits = (HashSet<Task>)state!;
                lock (waits)
                {
                    waits.Remove(done);
                }
            },
            _lockWaits,
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }

    /// <summary>
    /// Whether <paramref name="exception"/> ended the connection rather than one statement: the connection is broken or
    /// closed, the driver lost it (an I/O error, not a timeout), or the server ended the session (SQLSTATE class 57P:
    /// admin_shutdown, crash_shutdown, cannot_connect_now; class 08: connection exceptions).
    /// </summary>
    internal static bool IsConnectionLost(NpgsqlConnection connection, Exception exception) =>
        (connection.FullState & (ConnectionState.Broken | ConnectionState.Open)) != ConnectionState.Open
        || exception switch
        {
            PostgresException pg => pg.SqlState.StartsWith("57P", StringComparison.Ordinal) || pg.SqlState.StartsWith("08", StringComparison.Ordinal),
            NpgsqlException npgsql => npgsql.InnerException is not TimeoutException,
            _ => false,
        };

    /// <summary>
    /// Runs <paramref name="writes"/> in one batch (one transaction) and answers each of them. The updates of keys
    /// written once in the batch go first, as one statement over arrays (PostgreSQL plans and starts one statement for
    /// all of them), then the inserts of such keys, likewise; every other write is its own statement, in key order.
    /// </summary>
    private async Task ExecuteAsync(NpgsqlConnection connection, List<PostgreSqlWrite> writes, bool lockTimeout = true)
    {
        var (updates, inserts) = Group(writes);
        var command = new NpgsqlBatch(connection);
        HashSet<byte[]>? updated = null;
        await using (command.ConfigureAwait(false))
        {
            // Statements whose results are skipped, before the writes.
            var before = 0;
            if (lockTimeout)
            {
                command.BatchCommands.Add(new NpgsqlBatchCommand(SetLockTimeout));
                before++;
            }

            if (DistinctKeys(writes) is { Length: > 1 } keys)
            {
                command.BatchCommands.Add(Command(_lockKeys, ArrayOf(keys, NpgsqlDbType.Bytea)));
                before++;
            }

            if (updates is not null)
            {
                command.BatchCommands.Add(UpdateManyCommand(updates));
            }

            if (inserts is not null)
            {
                command.BatchCommands.Add(InsertManyCommand(inserts));
            }

            foreach (var write in writes)
            {
                if (!IsGrouped(write))
                {
                    command.BatchCommands.Add(write.Command);
                }
            }

            var reader = await command.ExecuteReaderAsync(Stopping).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                for (var i = 0; i < before; i++)
                {
                    await reader.NextResultAsync(Stopping).ConfigureAwait(false);
                }

                if (updates is not null)
                {
                    updated = new HashSet<byte[]>(updates.Count, SessionKeyComparer.Instance);
                    while (await reader.ReadAsync(Stopping).ConfigureAwait(false))
                    {
                        updated.Add(reader.GetFieldValue<byte[]>(0));
                    }
                }

                while (await reader.NextResultAsync(Stopping).ConfigureAwait(false))
                {
                    // The other statements' rows (RETURNING) are not needed: each is answered from its row count.
                }
            }
        }

        foreach (var write in writes)
        {
            // A grouped insert is one statement: had one of its rows failed, none would be stored and the batch would
            // have thrown (then each write runs alone).
            var rows = updates?.Contains(write) == true ? (updated!.Contains(write.Key) ? 1 : 0)
                : inserts?.Contains(write) == true ? 1
                : write.RecordsAffected;
            await write.CompleteAsync(rows, connection, Stopping).ConfigureAwait(false);
        }

        bool IsGrouped(PostgreSqlWrite write) => updates?.Contains(write) == true || inserts?.Contains(write) == true;
    }

    /// <summary>The keys of <paramref name="writes"/> (in key order), each once.</summary>
    private static byte[][] DistinctKeys(List<PostgreSqlWrite> writes)
    {
        var keys = new List<byte[]>(writes.Count);
        foreach (var write in writes)
        {
            if (keys.Count == 0 || !SessionKeyComparer.Instance.Equals(keys[^1], write.Key))
            {
                keys.Add(write.Key);
            }
        }

        return [.. keys];
    }

    /// <summary>
    /// The updates, and the inserts, that can run as one statement each: of keys no other write of the batch touches;
    /// null when fewer than two.
    /// </summary>
    private static (HashSet<PostgreSqlWrite>? Updates, HashSet<PostgreSqlWrite>? Inserts) Group(List<PostgreSqlWrite> writes)
    {
        if (writes.Count < 2)
        {
            return (null, null);
        }

        HashSet<PostgreSqlWrite>? updates = null;
        HashSet<PostgreSqlWrite>? inserts = null;
        for (var i = 0; i < writes.Count; i++)
        {
            // The batch is in key order: a key written twice has its writes side by side.
            var write = writes[i];
            var alone = (i == 0 || !SessionKeyComparer.Instance.Equals(writes[i - 1].Key, write.Key))
                && (i == writes.Count - 1 || !SessionKeyComparer.Instance.Equals(writes[i + 1].Key, write.Key));
            if (!alone)
            {
                continue;
            }

            if (write.Update is not null)
            {
                (updates ??= new HashSet<PostgreSqlWrite>(ReferenceEqualityComparer.Instance)).Add(write);
            }
            else if (write.Insert is not null)
            {
                (inserts ??= new HashSet<PostgreSqlWrite>(ReferenceEqualityComparer.Instance)).Add(write);
            }
        }

        return (updates is { Count: >= 2 } ? updates : null, inserts is { Count: >= 2 } ? inserts : null);
    }

    private NpgsqlBatchCommand UpdateManyCommand(HashSet<PostgreSqlWrite> grouped)
    {
        var count = grouped.Count;
        var ids = new byte[count][];
        var data = new byte[count][];
        var expected = new long[count];
        var expiresAt = new long?[count];
        var now = new long[count];
        var idle = new long[count];
        var absolute = new long[count];
        var i = 0;
        foreach (var write in grouped)
        {
            var update = write.Update!.Value;
            ids[i] = write.Key;
            data[i] = update.Data;
            expected[i] = update.ExpectedVersion;
            expiresAt[i] = update.ExpiresAt;
            now[i] = update.Now;
            idle[i] = update.IdleSeconds;
            absolute[i] = update.AbsoluteSeconds;
            i++;
        }

        return Command(
            _updateMany,
            ArrayOf(ids, NpgsqlDbType.Bytea),
            ArrayOf(data, NpgsqlDbType.Bytea),
            ArrayOf(expected, NpgsqlDbType.Bigint),
            ArrayOf(expiresAt, NpgsqlDbType.Bigint),
            ArrayOf(now, NpgsqlDbType.Bigint),
            ArrayOf(idle, NpgsqlDbType.Bigint),
            ArrayOf(absolute, NpgsqlDbType.Bigint));
    }

    private NpgsqlBatchCommand InsertManyCommand(HashSet<PostgreSqlWrite> grouped)
    {
        var count = grouped.Count;
        var ids = new byte[count][];
        var userIds = new string?[count];
        var data = new byte[count][];
        var now = new long[count];
        var ips = new string?[count];
        var userAgents = new string?[count];
        var expiresAt = new long[count];
        var i = 0;
        foreach (var write in grouped)
        {
            var insert = write.Insert!.Value;
            ids[i] = insert.Session.Key;
            userIds[i] = insert.Session.UserId;
            data[i] = insert.Session.Data;
            now[i] = insert.Now;
            ips[i] = insert.Session.IpAddress;
            userAgents[i] = insert.Session.UserAgent;
            expiresAt[i] = insert.ExpiresAt;
            i++;
        }

        return Command(
            _insertMany,
            ArrayOf(ids, NpgsqlDbType.Bytea),
            ArrayOf(userIds, NpgsqlDbType.Text),
            ArrayOf(data, NpgsqlDbType.Bytea),
            ArrayOf(now, NpgsqlDbType.Bigint),
            ArrayOf(ips, NpgsqlDbType.Text),
            ArrayOf(userAgents, NpgsqlDbType.Text),
            ArrayOf(expiresAt, NpgsqlDbType.Bigint));
    }
}

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
        Int64("ExpiresAt", ExpiresAt));
}
