using System.Data;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Npgsql;
using SessionMiddleware.Queues;

namespace SessionMiddleware.PostgreSql;

/// <summary>
/// Group commit: the session writes of this process (create, update, touch, renew, delete) go through one queue. A
/// single writer takes every write waiting at that moment and sends them as one <see cref="NpgsqlBatch"/>: one round
/// trip, one implicit transaction, so one WAL flush for all of them. Each caller still waits for that commit, so
/// nothing is acknowledged before it is durable.
/// <para>
/// Every write is one statement whose effect is read from its row count. When a statement fails, PostgreSQL rolls the
/// whole batch back; the writer then runs each write of the batch alone, so that only the failing one fails and the
/// others get exactly the answer they would have had without the queue. Every batch locks its rows in key order, so
/// that two nodes' batches never wait for each other in a cycle: a batch of several statements first locks all its rows
/// (<see cref="PostgreSqlSessionSql.LockKeys"/>) and then runs its writes in key order (writes to one key keep their
/// order); a batch that is one grouped statement locks them in the order of its arrays (<see cref="BatchSettings"/>).
/// </para>
/// </summary>
internal sealed partial class PostgreSqlWriteQueue : BatchLoop<PostgreSqlWrite>
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

    /// <summary>
    /// The settings of a batch's transaction: <see cref="LockTimeout"/>, and plans that join a grouped statement's
    /// arrays to the table by the primary key in the arrays' (key) order, never by a hash or merge join or a scan of the
    /// table. A grouped update then locks its rows in key order itself, so a batch that is one grouped statement needs
    /// no <see cref="PostgreSqlSessionSql.LockKeys"/> (whose row locks cost a WAL record each). Set for the transaction
    /// only; a prepared statement's plan is made within such a transaction too.
    /// </summary>
    private static readonly string BatchSettings =
        $"SELECT set_config('lock_timeout', '{(int)LockTimeout.TotalMilliseconds}ms', true), set_config('enable_hashjoin', 'off', true), " +
        "set_config('enable_mergejoin', 'off', true), set_config('enable_seqscan', 'off', true);";

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
                await RunInKeyOrderAsync(_connection, batch).ConfigureAwait(false);
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

    /// <summary>Runs <paramref name="batch"/> in key order on <paramref name="connection"/>; a failed statement reruns each write alone.</summary>
    private async Task RunInKeyOrderAsync(NpgsqlConnection connection, List<PostgreSqlWrite> batch)
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
            await RunEachAloneAsync(connection, batch, ex).ConfigureAwait(false);
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
    /// A statement of <paramref name="batch"/> failed (a duplicate key, a deadlock with another node, …): PostgreSQL
    /// rolled the whole batch back, so none of it is stored. Each write runs again alone and gets its own answer.
    /// </summary>
    private async Task RunEachAloneAsync(NpgsqlConnection connection, List<PostgreSqlWrite> batch, PostgresException ex)
    {
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
        HashSet<byte[]>? updated;
        var command = new NpgsqlBatch(connection);
        await using (command.ConfigureAwait(false))
        {
            var before = AddStatements(command, writes, updates, inserts, lockTimeout);
            updated = await ReadAsync(command, before, updates).ConfigureAwait(false);
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
    }

    /// <summary>Runs <paramref name="command"/>; returns the keys the grouped <paramref name="updates"/> changed (null without them).</summary>
    private async Task<HashSet<byte[]>?> ReadAsync(NpgsqlBatch command, int before, HashSet<PostgreSqlWrite>? updates)
    {
        HashSet<byte[]>? updated = null;
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

        return updated;
    }
}
