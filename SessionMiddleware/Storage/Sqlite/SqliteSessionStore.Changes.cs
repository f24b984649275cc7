using Microsoft.Data.Sqlite;

namespace SessionMiddleware.Storage.Sqlite;

/// <summary>
/// The table of recent ends and renewals (schema 3): written in the transaction of each delete and renewal, read by
/// <see cref="SqliteChangeFeed"/> in every process on the file, pruned after <see cref="ChangeRetention"/>.
/// </summary>
internal sealed partial class SqliteSessionStore
{
    /// <summary>How long a change is kept: a process that has not read it by then checks everything it holds instead.</summary>
    public static readonly TimeSpan ChangeRetention = TimeSpan.FromMinutes(10);

    /// <summary>How many changes are written between two prunes by the writer itself.</summary>
    public const int PruneEvery = 256;

    private long _changesWritten;

    /// <summary>Records the ends of <paramref name="rows"/>, in the delete's transaction.</summary>
    private async Task RecordEndsAsync(SqliteConnection connection, SqliteTransaction transaction, List<SessionLifetime> rows, CancellationToken cancellationToken)
    {
        var at = _expiry.UnixNow();
        foreach (var row in rows)
        {
            await connection.ExecuteAsync(SqlStatement.Of(
                _sqlite.RecordEnd, new { At = at, Id = row.Key }, transaction, cancellationToken: cancellationToken)).ConfigureAwait(false);
        }

        await PruneChangesNowAndThenAsync(connection, transaction, rows.Count, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Every <see cref="PruneEvery"/> changes written, deletes those older than <see cref="ChangeRetention"/> in the same
    /// transaction: the table stays bounded by what a retention period writes even where no process reads it (an app
    /// that holds no connection runs no feed, which prunes too).
    /// </summary>
    private Task PruneChangesNowAndThenAsync(SqliteConnection connection, SqliteTransaction transaction, int written, CancellationToken cancellationToken)
    {
        var before = Interlocked.Add(ref _changesWritten, written) - written;
        if (before / PruneEvery == (before + written) / PruneEvery)
        {
            return Task.CompletedTask;
        }

        return connection.ExecuteAsync(SqlStatement.Of(
            _sqlite.PruneChanges, new { Before = _expiry.UnixNow() - (long)ChangeRetention.TotalSeconds }, transaction, cancellationToken: cancellationToken));
    }

    /// <summary>The newest change's sequence number (0 when none): where a process starts reading.</summary>
    public Task<long> LastChangeAsync(CancellationToken cancellationToken) =>
        ReadAsync(
            connection => connection.ExecuteScalarAsync<long>(SqlStatement.Of(_sqlite.SelectLastChange, cancellationToken: cancellationToken)),
            cancellationToken);

    /// <summary>The changes after <paramref name="after"/>, oldest first, at most <paramref name="limit"/>.</summary>
    public Task<List<SqliteChange>> ReadChangesAsync(long after, int limit, CancellationToken cancellationToken) =>
        ReadAsync(
            async connection => (await connection.QueryAsync<SqliteChange>(SqlStatement.Of(
                _sqlite.SelectChanges, new { After = after, Limit = limit }, cancellationToken: cancellationToken)).ConfigureAwait(false)),
            cancellationToken);

    /// <summary>Deletes the changes older than <see cref="ChangeRetention"/>.</summary>
    public Task<int> PruneChangesAsync(CancellationToken cancellationToken)
    {
        var before = _expiry.UnixNow() - (long)ChangeRetention.TotalSeconds;
        return WriteAsync(
            (connection, transaction, token) => connection.ExecuteAsync(SqlStatement.Of(
                _sqlite.PruneChanges, new { Before = before }, transaction, cancellationToken: token)),
            singleStatement: true,
            committed: static (_, _) => { }, // the changes table only: no session row
            cancellationToken);
    }
}

/// <summary>One row of the changes table: an end (<see cref="NewId"/> null) or a renewal.</summary>
internal sealed class SqliteChange
{
    public long Seq { get; set; }

    public byte[] Id { get; set; } = [];

    public byte[]? NewId { get; set; }

    public string? UserId { get; set; }
}
