using System.Data.Common;
using Dapper;

namespace SessionMiddleware.Storage;

/// <summary>A statement and the values of its parameters (names without the <c>@</c>).</summary>
/// <param name="Text">The SQL text.</param>
/// <param name="Parameters">The parameters, by name.</param>
internal sealed record SessionSqlCommand(string Text, IReadOnlyDictionary<string, object?> Parameters)
{
    /// <summary>Runs a <see cref="SessionSql.Query"/> command: its rows as <see cref="SessionInfo"/>.</summary>
    /// <param name="connection">An open connection.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The sessions, in the statement's order.</returns>
    public async Task<IReadOnlyList<SessionInfo>> QuerySessionsAsync(DbConnection connection, CancellationToken cancellationToken = default)
    {
        var rows = await connection.QueryAsync<SessionInfoRow>(new CommandDefinition(
            Text, new DynamicParameters(Parameters), cancellationToken: cancellationToken)).ConfigureAwait(false);
        return [.. rows.Select(r => r.ToSessionInfo())];
    }

    /// <summary>Runs a command whose one row and column is a count (<see cref="SessionSql.Count"/>).</summary>
    /// <param name="connection">An open connection.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The count.</returns>
    public Task<long> CountAsync(DbConnection connection, CancellationToken cancellationToken = default) =>
        connection.ExecuteScalarAsync<long>(new CommandDefinition(Text, new DynamicParameters(Parameters), cancellationToken: cancellationToken));
}
