using System.Runtime.InteropServices;
using Npgsql;
using NpgsqlTypes;
using static SessionMiddleware.PostgreSql.PostgreSqlParameters;

namespace SessionMiddleware.PostgreSql;

/// <summary>
/// Rows another transaction holds locked: which keys of a batch they are, and the writes that wait for them alone on
/// their own connection (at most <see cref="MaxLockWaits"/> at once) so that the rest of the node's writes go on.
/// </summary>
internal sealed partial class PostgreSqlWriteQueue
{
    /// <summary>
    /// The keys of <paramref name="batch"/> whose rows another transaction holds locked (<see cref="PostgreSqlSessionSql.LockedKeys"/>),
    /// or null when the table itself is locked (the question timed out too).
    /// </summary>
    private async Task<HashSet<byte[]>?> LockedKeysAsync(NpgsqlConnection connection, List<PostgreSqlWrite> batch)
    {
        var command = new NpgsqlBatch(connection);
        await using (command.ConfigureAwait(false))
        {
            command.BatchCommands.Add(new NpgsqlBatchCommand(BatchSettings));
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
        var wait = Task.Run(() => RunWhenUnlockedAsync(write));
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

    /// <summary>Runs <paramref name="write"/> on a connection of its own once a lock-wait slot is free (<see cref="WaitForLock"/>).</summary>
    private async Task RunWhenUnlockedAsync(PostgreSqlWrite write)
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
    }
}
