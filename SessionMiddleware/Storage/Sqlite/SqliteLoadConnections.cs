using System.Collections.Concurrent;
using System.Data;
using Microsoft.Data.Sqlite;

namespace SessionMiddleware.Storage.Sqlite;

/// <summary>
/// A few open connections kept for loads, each with <see cref="SessionSql.Load"/> prepared. A load is the hot path of
/// every request that carries a cookie, and a prepared command on a held connection costs less than half of a pooled
/// open plus Dapper (benchmarks/README.md), so this one query bypasses Dapper; every other statement goes through it.
/// </summary>
internal sealed class SqliteLoadConnections : IDisposable
{
    /// <summary>The most idle connections kept; more are opened under a burst and closed after it.</summary>
    public const int MaxIdle = 16;

    private readonly ConcurrentBag<LoadConnection> _idle = [];
    private readonly Func<CancellationToken, Task<SqliteConnection>> _open;
    private readonly string _loadSql;
    private int _idleCount;
    private bool _disposed;

    public SqliteLoadConnections(Func<CancellationToken, Task<SqliteConnection>> open, string loadSql)
    {
        _open = open;
        _loadSql = loadSql;
    }

    /// <summary>Runs the load query for <paramref name="key"/>; null when there is no such row.</summary>
    public async Task<SessionRow?> LoadAsync(byte[] key, CancellationToken cancellationToken)
    {
        var lease = await RentAsync(cancellationToken).ConfigureAwait(false);
        var healthy = false;
        try
        {
            lease.Id.Value = key;
            SessionRow? row = null;
            var reader = await lease.Command.ExecuteReaderAsync(CommandBehavior.SingleRow, cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    row = new SessionRow
                    {
                        Data = reader.IsDBNull(SessionSql.LoadColumns.Data) ? null : (byte[])reader.GetValue(SessionSql.LoadColumns.Data),
                        Version = reader.GetInt64(SessionSql.LoadColumns.Version),
                        UserId = reader.IsDBNull(SessionSql.LoadColumns.UserId) ? null : reader.GetString(SessionSql.LoadColumns.UserId),
                        CreatedAt = reader.GetInt64(SessionSql.LoadColumns.CreatedAt),
                        LastAccess = reader.GetInt64(SessionSql.LoadColumns.LastAccess),
                        ExpiresAt = reader.GetInt64(SessionSql.LoadColumns.ExpiresAt),
                    };
                    SessionSql.LoadColumns.ReadSignIn(reader, row);
                }
            }

            healthy = true;
            return row;
        }
        finally
        {
            Return(lease, healthy);
        }
    }

    /// <summary>Closes the idle connections (tests that must reach the file with no connection open, and shutdown).</summary>
    public void Clear()
    {
        while (_idle.TryTake(out var lease))
        {
            Interlocked.Decrement(ref _idleCount);
            lease.Dispose();
        }
    }

    public void Dispose()
    {
        _disposed = true;
        Clear();
    }

    private async Task<LoadConnection> RentAsync(CancellationToken cancellationToken)
    {
        if (_idle.TryTake(out var lease))
        {
            Interlocked.Decrement(ref _idleCount);
            return lease;
        }

        var connection = await _open(cancellationToken).ConfigureAwait(false);
        try
        {
            var command = connection.CreateCommand();
            command.CommandText = _loadSql;
            var id = command.Parameters.Add("@Id", SqliteType.Blob);
            id.Value = Array.Empty<byte>();
            command.Prepare();
            return new LoadConnection(connection, command, id);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private void Return(LoadConnection lease, bool healthy)
    {
        // A connection that failed (corrupt file, lock, cancellation) is not reused: the next load opens a fresh one.
        if (healthy && !_disposed && Interlocked.Increment(ref _idleCount) <= MaxIdle)
        {
            _idle.Add(lease);
            return;
        }

        if (healthy && !_disposed)
        {
            Interlocked.Decrement(ref _idleCount);
        }

        lease.Dispose();
    }

    private sealed record LoadConnection(SqliteConnection Connection, SqliteCommand Command, SqliteParameter Id) : IDisposable
    {
        public void Dispose()
        {
            Command.Dispose();
            Connection.Dispose();
        }
    }
}
