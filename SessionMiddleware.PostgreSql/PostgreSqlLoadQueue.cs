using System.Threading.Channels;
using Npgsql;
using NpgsqlTypes;
using SessionMiddleware.Queues;
using SessionMiddleware.Storage;

namespace SessionMiddleware.PostgreSql;

/// <summary>
/// Group load: the session loads of this process go through one queue, and the loads waiting at one moment are read by
/// one statement (<c>WHERE id = ANY($1)</c>). PostgreSQL's cost of a statement (its transaction, snapshot and executor)
/// is then paid once per group instead of once per request; each row still costs one index lookup.
/// <para>
/// At most <see cref="MaxInFlight"/> groups are at the server at once: the loads that arrive meanwhile wait and form the
/// next group. Under light load a group is one load, sent at once; under heavy load the groups grow, so the server's
/// work per load falls as the load rises. A load is always read by a statement sent after it was queued, so it sees
/// every write committed before it was asked for.
/// </para>
/// <para>
/// A group's statement is cancelled once all its callers have gone (their own timeouts), so that a server that does not
/// answer holds no slot for nobody; Npgsql cancels nothing under multiplexing, where the slot is held until the server
/// answers or the command timeout. When the store stops, the loads still at the server fail at once with an
/// <see cref="InvalidOperationException"/>, and the loop ends only after its groups did (they read its token).
/// </para>
/// </summary>
internal sealed class PostgreSqlLoadQueue : BatchLoop<PostgreSqlLoadQueue.PendingLoad>
{
    /// <summary>The most loads in one statement.</summary>
    public const int MaxBatch = 256;

    /// <summary>The most statements at the server at once.</summary>
    public const int MaxInFlight = 2;

    private readonly SemaphoreSlim _slots = new(MaxInFlight, MaxInFlight);
    private readonly NpgsqlDataSource _dataSource;
    private readonly string _sql;
    private readonly HashSet<Task> _groups = [];

    /// <summary>The group the next batch forms, with the slot it holds (kept for the next batch when none joined).</summary>
    private Group? _forming;

    /// <summary>The key's position, after <see cref="SessionSql.LoadColumns"/>.</summary>
    private const int IdColumn = SessionSql.LoadColumns.Count;

    /// <param name="dataSource">Where each group takes its connection.</param>
    /// <param name="table">The (quoted) session table.</param>
    /// <param name="drainTimeout">How long a stopping queue reads what is queued (<see cref="BatchLoop.DrainTimeout"/> when null).</param>
    public PostgreSqlLoadQueue(NpgsqlDataSource dataSource, string table, TimeSpan? drainTimeout = null)
        : base(Channel.CreateUnbounded<PendingLoad>(new UnboundedChannelOptions { SingleReader = true }), MaxBatch)
    {
        _dataSource = dataSource;
        DrainTimeout = drainTimeout ?? BatchLoop.DrainTimeout;
        // The columns of SessionSql.Load, at the positions of SessionSql.LoadColumns, then the key.
        _sql = $"SELECT data, version, user_id, created_at, last_access, expires_at, {SessionSql.SignInColumns}, id FROM {table} WHERE id = ANY($1);";
        Start();
    }

    /// <summary>The row of <paramref name="key"/>, live or expired, or null when there is none.</summary>
    public Task<StoredSession?> LoadAsync(byte[] key, CancellationToken cancellationToken)
    {
        var load = new PendingLoad(key, cancellationToken);
        if (!TryWrite(load))
        {
            throw ShuttingDown();
        }

        return load.Task;
    }

    /// <summary>A free slot first: while every slot is busy, the loads that arrive gather into the next group.</summary>
    protected override async ValueTask BeforeBatchAsync(CancellationToken stopping)
    {
        if (_forming is null)
        {
            await _slots.WaitAsync(stopping).ConfigureAwait(false);
            _forming = new Group(stopping);
        }
    }

    protected override bool Take(PendingLoad item, List<PendingLoad> batch)
    {
        if (item.Join(_forming!))
        {
            batch.Add(item);
        }

        return true;
    }

    /// <summary>Sends the group's statement and returns at once: the next group forms while this one is at the server.</summary>
    protected override Task RunBatchAsync(List<PendingLoad> batch, CancellationToken stopping)
    {
        var group = _forming!;
        _forming = null;
        var running = RunGroupAsync([.. batch], group);
        lock (_groups)
        {
            if (!running.IsCompleted)
            {
                _groups.Add(running);
                _ = running.ContinueWith(
                    static (t, state) =>
                    {
                        var groups = (HashSet<Task>)state!;
                        lock (groups)
                        {
                            groups.Remove(t);
                        }
                    },
                    _groups,
                    CancellationToken.None,
                    TaskContinuationOptions.ExecuteSynchronously,
                    TaskScheduler.Default);
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>
    /// The groups still at the server end (answered, or cancelled with the loop) before the loop ends: they read its
    /// token, whose source is disposed once the loop ended.
    /// </summary>
    protected override async ValueTask EndAsync()
    {
        _forming?.Dispose();
        Task[] groups;
        lock (_groups)
        {
            groups = [.. _groups];
        }

        await Task.WhenAll(groups).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    /// <summary>The failure of a load the store's shutdown cancelled: the database had not answered it within the drain timeout.</summary>
    private InvalidOperationException Stopped(Exception? cancelled) => new(
        $"The session store stopped before this session was loaded: the database did not answer within the shutdown's drain timeout ({DrainTimeout.TotalSeconds:0.###} s), and the load was cancelled.",
        cancelled);

    private async Task RunGroupAsync(PendingLoad[] batch, Group group)
    {
        // When the store stops, the group's callers are answered at once: with multiplexing (the default) Npgsql does not
        // cancel a statement once sent, so the group itself may only end when the server answers.
        using var stopping = group.Stopping.UnsafeRegister(
            static state =>
            {
                var (loads, queue) = ((PendingLoad[], PostgreSqlLoadQueue))state!;
                var failure = queue.Stopped(null);
                foreach (var load in loads)
                {
                    load.Fail(failure);
                }
            },
            (batch, this));
        try
        {
            var rows = await ReadAsync(batch, group.Token).ConfigureAwait(false);
            foreach (var load in batch)
            {
                load.Complete(rows.TryGetValue(load.Key, out var loaded) ? loaded.Take(load.Key) : null);
            }
        }
        catch (Exception ex)
        {
            var failure = Stopping.IsCancellationRequested ? Stopped(ex) : ex;
            foreach (var load in batch)
            {
                load.Fail(failure);
            }
        }
        finally
        {
            group.Dispose();
            _slots.Release();
        }
    }

    /// <summary>The rows of <paramref name="batch"/>'s keys, read by one statement.</summary>
    private async Task<Dictionary<byte[], Loaded>> ReadAsync(PendingLoad[] batch, CancellationToken cancellationToken)
    {
        var keys = new byte[batch.Length][];
        for (var i = 0; i < keys.Length; i++)
        {
            keys[i] = batch[i].Key;
        }

        var rows = new Dictionary<byte[], Loaded>(batch.Length, SessionKeyComparer.Instance);
        var command = _dataSource.CreateCommand(_sql);
        await using (command.ConfigureAwait(false))
        {
            command.Parameters.Add(PostgreSqlParameters.ArrayOf(keys, NpgsqlDbType.Bytea));
            // Cancelled when the store stops, or once every caller of the group has gone (their own timeouts): a
            // statement nobody waits for no longer holds a slot until the command timeout.
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var id = reader.GetFieldValue<byte[]>(IdColumn);
                    var row = new SessionRow
                    {
                        Data = reader.IsDBNull(SessionSql.LoadColumns.Data) ? null : reader.GetFieldValue<byte[]>(SessionSql.LoadColumns.Data),
                        Version = reader.GetInt64(SessionSql.LoadColumns.Version),
                        UserId = reader.IsDBNull(SessionSql.LoadColumns.UserId) ? null : reader.GetString(SessionSql.LoadColumns.UserId),
                        CreatedAt = reader.GetInt64(SessionSql.LoadColumns.CreatedAt),
                        LastAccess = reader.GetInt64(SessionSql.LoadColumns.LastAccess),
                        ExpiresAt = reader.GetInt64(SessionSql.LoadColumns.ExpiresAt),
                    };
                    SessionSql.LoadColumns.ReadSignIn(reader, row);
                    rows[id] = new Loaded(row.ToStoredSession(id));
                }
            }
        }

        return rows;
    }

    /// <summary>
    /// The cancellation of one group's statement: when the store stops, or when the last of its callers has gone.
    /// </summary>
    internal sealed class Group : IDisposable
    {
        // Never disposed (it has no timer): a caller that leaves after the group ended may still cancel it, harmlessly.
        private readonly CancellationTokenSource _cancel = new();
        private readonly CancellationTokenRegistration _stopping;
        private int _waiting;

        public Group(CancellationToken stopping)
        {
            Stopping = stopping;
            _stopping = stopping.UnsafeRegister(static state => ((CancellationTokenSource)state!).Cancel(), _cancel);
        }

        public CancellationToken Token => _cancel.Token;

        /// <summary>The store's stopping token, read once when the group was formed.</summary>
        public CancellationToken Stopping { get; }

        public void Join() => Interlocked.Increment(ref _waiting);

        /// <summary>A caller gave up; the last one cancels the statement (off its thread: Npgsql then asks the server to cancel it).</summary>
        public void Leave()
        {
            if (Interlocked.Decrement(ref _waiting) == 0)
            {
                _ = _cancel.CancelAsync();
            }
        }

        public void Dispose() => _stopping.Dispose();
    }

    /// <summary>One load waiting for its group.</summary>
    internal sealed class PendingLoad : IBatchItem
    {
        private readonly TaskCompletionSource<StoredSession?> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly CancellationTokenRegistration _cancellation;
        private Group? _group;

        public PendingLoad(byte[] key, CancellationToken cancellationToken)
        {
            Key = key;
            if (cancellationToken.CanBeCanceled)
            {
                _cancellation = cancellationToken.Register(static state => ((PendingLoad)state!).Cancel(), this);
                CancellationToken = cancellationToken;
            }
        }

        public byte[] Key { get; }

        public Task<StoredSession?> Task => _completion.Task;

        public bool IsAnswered => _completion.Task.IsCompleted;

        private CancellationToken CancellationToken { get; }

        /// <summary>Joins <paramref name="group"/> unless already answered (its caller gone).</summary>
        public bool Join(Group group)
        {
            lock (_completion)
            {
                if (IsAnswered)
                {
                    return false;
                }

                _group = group;
                group.Join();
                return true;
            }
        }

        public void Complete(StoredSession? row)
        {
            _cancellation.Dispose();
            _completion.TrySetResult(row);
        }

        public void Fail(Exception exception)
        {
            _cancellation.Dispose();
            _completion.TrySetException(exception);
        }

        private void Cancel()
        {
            Group? group;
            lock (_completion)
            {
                if (!_completion.TrySetCanceled(CancellationToken))
                {
                    return;
                }

                group = _group;
            }

            group?.Leave();
        }
    }

    /// <summary>A row read for a group; two loads of its key in the group get separate copies (each caller owns what it was given).</summary>
    private sealed class Loaded(StoredSession row)
    {
        private bool _taken;

        /// <summary>The row (its key equal to <paramref name="key"/>); a copy after the first time.</summary>
        public StoredSession Take(byte[] key)
        {
            if (!_taken)
            {
                _taken = true;
                return row;
            }

            return row with { Key = key, Data = row.Data.AsSpan().ToArray() };
        }
    }
}
