using System.Data.Common;

namespace SessionMiddleware.Storage;

/// <summary>A statement and the values of its parameters (names without the <c>@</c>).</summary>
/// <param name="Text">The SQL text.</param>
/// <param name="Parameters">The parameters, by name.</param>
/// <remarks>
/// Run over plain ADO.NET rather than Dapper: its parameters are known only at run time (the filter decides), which
/// Dapper binds by reflection and Dapper.AOT's build-time generation cannot see.
/// </remarks>
internal sealed record SessionSqlCommand(string Text, IReadOnlyDictionary<string, object?> Parameters)
{
    /// <summary>Runs a <see cref="SessionSql.Query"/> command: its rows as <see cref="SessionInfo"/>.</summary>
    /// <param name="connection">An open connection.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The sessions, in the statement's order.</returns>
    public async Task<IReadOnlyList<SessionInfo>> QuerySessionsAsync(DbConnection connection, CancellationToken cancellationToken = default)
    {
        var command = CreateCommand(connection);
        await using var commandScope = command.ConfigureAwait(false);
        var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using var readerScope = reader.ConfigureAwait(false);
        var sessions = new List<SessionInfo>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            // The columns of SessionSql.Query, in its order.
            sessions.Add(new SessionInfoRow
            {
                Id = reader.GetFieldValue<byte[]>(0),
                UserId = reader.IsDBNull(1) ? null : reader.GetString(1),
                CreatedAt = reader.GetInt64(2),
                LastAccess = reader.GetInt64(3),
                Ip = reader.IsDBNull(4) ? null : reader.GetString(4),
                UserAgent = reader.IsDBNull(5) ? null : reader.GetString(5),
            }.ToSessionInfo());
        }

        return sessions;
    }

    /// <summary>Runs a command whose one row and column is a count (<see cref="SessionSql.Count"/>).</summary>
    /// <param name="connection">An open connection.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The count.</returns>
    public async Task<long> CountAsync(DbConnection connection, CancellationToken cancellationToken = default)
    {
        var command = CreateCommand(connection);
        await using var commandScope = command.ConfigureAwait(false);
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The command, its parameters bound by name.</summary>
    /// <param name="connection">An open connection.</param>
    /// <returns>A command for the caller to dispose.</returns>
    public DbCommand CreateCommand(DbConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var command = connection.CreateCommand();
#pragma warning disable CA2100 // The text is SessionSql's, every value a parameter.
        command.CommandText = Text;
#pragma warning restore CA2100
        foreach (var (name, value) in Parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value ?? DBNull.Value;
            command.Parameters.Add(parameter);
        }

        return command;
    }
}
