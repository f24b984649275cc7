using System.Threading.Channels;
using Npgsql;
using NpgsqlTypes;
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
/// </summary>
internal sealed class PostgreSqlLoadQueue : IAsyncDisposable
{
    /// <summary>The most loads in one statement.</summary>
    public const int MaxBatch = 256;

    /// <summary>The most statements at the server at once.</summary>
    public const int MaxInFlight = 2;

    private readonly Channel<PendingLoad> _channel = Channel.CreateUnbounded<PendingLoad>(new UnboundedChannelOptions { SingleReader = true });
    private readonly SemaphoreSlim _slots = new(MaxInFlight, MaxInFlight);
    private readonly CancellationTokenSource _stopping = new();
    private readonly NpgsqlDataSource _dataSource;
    private readonly string _sql;
    private readonly Task _loop;

    /// <summary>The key's position, after <see cref="SessionSql.LoadColumns"/>.</summary>
    private const int IdColumn = SessionSql.LoadColumns.ExpiresAt + 1;

    /// <param name="dataSource">Where each group takes its connection.</param>
    /// <param name="table">The (quoted) session table.</param>
    public PostgreSqlLoadQueue(NpgsqlDataSource dataSource, string table)
    {
        _dataSource = dataSource;
        // The columns of SessionSql.Load, at the positions of SessionSql.LoadColumns, then the key.
        _sql = $"SELECT data, version, user_id, created_at, last_access, expires_at, id FROM {table} WHERE id = ANY($1);";
        _loop = Task.Run(RunAsync);
    }

    /// <summary>The row of <paramref name="key"/>, live or expired, or null when there is none.</summary>
    public Task<StoredSession?> LoadAsync(byte[] key, CancellationToken cancellationToken)
    {
        var load = new PendingLoad(key, cancellationToken);
        if (!_channel.Writer.TryWrite(load))
        {
            throw new ObjectDisposedException(nameof(PostgreSqlLoadQueue), "The session store is shutting down.");
        }

        return load.Task;
    }

    public ValueTask DisposeAsync() => QueueLoop.StopAsync(Complete, _loop, _stopping, QueueLoop.DrainTimeout);

    /// <summary>Takes no more loads; those queued are still read.</summary>
    public void Complete() => _channel.Writer.TryComplete();

    private async Task RunAsync()
    {
        try
        {
            while (await _channel.Reader.WaitToReadAsync(_stopping.Token).ConfigureAwait(false))
            {
                // A free slot first: while every slot is busy, the loads that arrive gather into the next group.
                await _slots.WaitAsync(_stopping.Token).ConfigureAwait(false);
                var batch = new List<PendingLoad>();
                while (batch.Count < MaxBatch && _channel.Reader.TryRead(out var load))
                {
                    if (!load.IsAnswered)
                    {
                        batch.Add(load);
                    }
                }

                if (batch.Count == 0)
                {
                    _slots.Release();
                    continue;
                }

                _ = RunBatchAsync(batch);
            }

            // Completed: wait for the groups still at the server.
            for (var i = 0; i < MaxInFlight; i++)
            {
                await _slots.WaitAsync(_stopping.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Disposed while waiting.
        }
        finally
        {
            while (_channel.Reader.TryRead(out var left))
            {
                left.Fail(new ObjectDisposedException(nameof(PostgreSqlLoadQueue), "The session store is shutting down."));
            }
        }
    }

    private async Task RunBatchAsync(List<PendingLoad> batch)
    {
        try
        {
            var keys = new byte[batch.Count][];
            for (var i = 0; i < keys.Length; i++)
            {
                keys[i] = batch[i].Key;
            }

            var rows = new Dictionary<byte[], Loaded>(batch.Count, SessionKeyComparer.Instance);
            var command = _dataSource.CreateCommand(_sql);
            await using (command.ConfigureAwait(false))
            {
                command.Parameters.Add(PostgreSqlParameters.ArrayOf(keys, NpgsqlDbType.Bytea));
                var reader = await command.ExecuteReaderAsync(_stopping.Token).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(_stopping.Token).ConfigureAwait(false))
                    {
                        var id = reader.GetFieldValue<byte[]>(IdColumn);
                        rows[id] = new Loaded(new SessionRow
                        {
                            Data = reader.IsDBNull(SessionSql.LoadColumns.Data) ? null : reader.GetFieldValue<byte[]>(SessionSql.LoadColumns.Data),
                            Version = reader.GetInt64(SessionSql.LoadColumns.Version),
                            UserId = reader.IsDBNull(SessionSql.LoadColumns.UserId) ? null : reader.GetString(SessionSql.LoadColumns.UserId),
                            CreatedAt = reader.GetInt64(SessionSql.LoadColumns.CreatedAt),
                            LastAccess = reader.GetInt64(SessionSql.LoadColumns.LastAccess),
                            ExpiresAt = reader.GetInt64(SessionSql.LoadColumns.ExpiresAt),
                        }.ToStoredSession(id));
                    }
                }
            }

            foreach (var load in batch)
            {
                load.Complete(rows.TryGetValue(load.Key, out var loaded) ? loaded.Take(load.Key) : null);
            }
        }
        catch (Exception ex)
        {
            foreach (var load in batch)
            {
                load.Fail(ex);
            }
        }
        finally
        {
            _slots.Release();
        }
    }

    /// <summary>One load waiting for its group.</summary>
    private sealed class PendingLoad
    {
        private readonly TaskCompletionSource<StoredSession?> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly CancellationTokenRegistration _cancellation;
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

        private void Cancel() => _completion.TrySetCanceled(CancellationToken);
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
