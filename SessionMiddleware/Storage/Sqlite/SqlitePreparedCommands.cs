using System.Runtime.CompilerServices;
using Microsoft.Data.Sqlite;

namespace SessionMiddleware.Storage.Sqlite;

/// <summary>
/// The writer's hottest statements (insert, update, touch), prepared once per connection and reused: preparing a
/// statement and going through Dapper costs more than running it (see <see cref="SqliteLoadConnections"/> for the
/// figures of the load). Commands live as long as their connection.
/// </summary>
internal sealed class SqlitePreparedCommands
{
    private readonly ConditionalWeakTable<SqliteConnection, Dictionary<string, SqliteCommand>> _byConnection = [];

    /// <summary>
    /// The prepared command for <paramref name="sql"/> on <paramref name="connection"/>, enlisted in
    /// <paramref name="transaction"/>; <paramref name="parameters"/> names its parameters, in any order.
    /// </summary>
    public SqliteCommand Get(SqliteConnection connection, SqliteTransaction transaction, string sql, params ReadOnlySpan<(string Name, SqliteType Type)> parameters)
    {
        var commands = _byConnection.GetOrCreateValue(connection);
        if (!commands.TryGetValue(sql, out var command))
        {
            command = connection.CreateCommand();
            command.CommandText = sql;
            foreach (var (name, type) in parameters)
            {
                command.Parameters.Add(name, type);
            }

            command.Transaction = transaction;
            command.Prepare();
            commands[sql] = command;
        }

        command.Transaction = transaction;
        return command;
    }
}
