using Npgsql;
using NpgsqlTypes;
using static SessionMiddleware.PostgreSql.PostgreSqlParameters;

namespace SessionMiddleware.PostgreSql;

/// <summary>The statements of a batch: the ordered lock of its rows, the grouped updates and inserts, the other writes.</summary>
internal sealed partial class PostgreSqlWriteQueue
{
    /// <summary>
    /// Adds the statements of <paramref name="writes"/> to <paramref name="command"/>: the lock timeout and, unless the
    /// batch is one grouped statement, the ordered lock of their rows first, then the grouped updates and inserts, then
    /// each other write. Returns how many statements come before the writes (their results are skipped).
    /// </summary>
    private int AddStatements(NpgsqlBatch command, List<PostgreSqlWrite> writes, HashSet<PostgreSqlWrite>? updates, HashSet<PostgreSqlWrite>? inserts, bool lockTimeout)
    {
        var before = 0;
        if (lockTimeout)
        {
            command.BatchCommands.Add(new NpgsqlBatchCommand(BatchSettings));
            before++;
        }

        // A batch that is one grouped statement locks its rows in key order itself (BatchSettings's plan settings).
        var oneStatement = updates?.Count == writes.Count || inserts?.Count == writes.Count;
        if (!oneStatement && DistinctKeys(writes) is { Length: > 1 } keys)
        {
            command.BatchCommands.Add(Command(_lockKeys, ArrayOf(keys, NpgsqlDbType.Bytea)));
            before++;
        }

        if (updates is not null)
        {
            command.BatchCommands.Add(UpdateManyCommand(writes, updates));
        }

        if (inserts is not null)
        {
            command.BatchCommands.Add(InsertManyCommand(writes, inserts));
        }

        foreach (var write in writes)
        {
            if (updates?.Contains(write) != true && inserts?.Contains(write) != true)
            {
                command.BatchCommands.Add(write.Command);
            }
        }

        return before;
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

    /// <summary>The grouped updates as one statement, their arrays in the batch's (key) order: the order it locks their rows in.</summary>
    private NpgsqlBatchCommand UpdateManyCommand(List<PostgreSqlWrite> writes, HashSet<PostgreSqlWrite> grouped)
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
        foreach (var write in writes)
        {
            if (!grouped.Contains(write))
            {
                continue;
            }

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

    /// <summary>The grouped inserts as one statement, their arrays in the batch's (key) order.</summary>
    private NpgsqlBatchCommand InsertManyCommand(List<PostgreSqlWrite> writes, HashSet<PostgreSqlWrite> grouped)
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
        foreach (var write in writes)
        {
            if (!grouped.Contains(write))
            {
                continue;
            }

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
