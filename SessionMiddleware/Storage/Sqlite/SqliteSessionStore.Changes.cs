using Dapper;
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

    /// <summary>Records the ends of <paramref name="rows"/>, in the delete's transaction.</summary>
    private async Task RecordEndsAsync(SqliteConnection connection, SqliteTransaction transaction, IReadOnlyList<SessionLifetime> rows, CancellationToken cancellationToken)
    {
        var at = _expiry.UnixNow();
        foreach (var row in rows)
        {
            await connection.ExecuteAsync(new CommandDefinition(
                _sqlite.RecordEnd, new { At = at, Id = row.Key }, transaction, cancellationToken: cancellationToken)).ConfigureAwait(false);
        }
    }

    /// <summary>The newest change's sequence number (0 when none): where a process starts reading.</summary>
    public Task<long> LastChangeAsync(CancellationToken cancellationToken) =>
        ReadAsync(
            connection => connection.ExecuteScalarAsync<long>(new CommandDefinition(_sqlite.SelectLastChange, cancellationToken: cancellationToken)),
            cancellationToken);

    /// <summary>The changes after <paramref name="after"/>, oldest first, at most <paramref name="limit"/>.</summary>
    public Task<List<SqliteChange>> ReadChangesAsync(long after, int limit, CancellationToken cancellationToken) =>
        ReadAsync(
            async connection => (await connection.QueryAsync<SqliteChange>(new CommandDefinition(
                _sqlite.SelectChanges, new { After = after, Limit = limit }, cancellationToken: cancellationToken)).ConfigureAwait(false)).AsList(),
            cancellationToken);

    /// <summary>Deletes the changes older than <see cref="ChangeRetention"/>.</summary>
    public Task<int> PruneChangesAsync(CancellationToken cancellationToken)
    {
        var before = _expiry.UnixNow() - (long)ChangeRetention.TotalSeconds;
        return WriteAsync(
            (connection, transaction, token) => connection.ExecuteAsync(new CommandDefinition(
                _sqlite.PruneChanges, new { Before = before }, transaction, cancellationToken: token)),
            singleStatement: true,
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
