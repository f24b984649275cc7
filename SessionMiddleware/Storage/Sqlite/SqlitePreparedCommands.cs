using System.Runtime.CompilerServices;
using Microsoft.Data.Sqlite;

namespace SessionMiddleware.Storage.Sqlite;

/// <summary>
/// The writer's hottest statements (insert, update, touch), prepared once per writer connection and reused instead of
/// parsed again through Dapper for every write; every other statement goes through Dapper. The writer keeps its
/// connection between group transactions, so each is prepared once. Commands live as long as their connection.
/// </summary>
internal sealed class SqlitePreparedCommands
{
    private readonly ConditionalWeakTable<SqliteConnection, Dictionary<string, SqliteCommand>> _byConnection = [];

    /// <summary>
    /// The prepared command for <paramref name="sql"/> on <paramref name="connection"/>, enlisted in
    /// <paramref name="transaction"/>, with <paramref name="parameters"/> bound (null as SQL NULL). A call site passes
    /// the same names in the same order every time; the command's parameters are created from them on first use.
    /// </summary>
    public SqliteCommand Get(SqliteConnection connection, SqliteTransaction transaction, string sql, params ReadOnlySpan<(string Name, object? Value)> parameters)
    {
        var commands = _byConnection.GetOrCreateValue(connection);
        if (!commands.TryGetValue(sql, out var command))
        {
            command = connection.CreateCommand();
            command.CommandText = sql;
            foreach (var (name, _) in parameters)
            {
                command.Parameters.Add(new SqliteParameter { ParameterName = name });
            }

            command.Transaction = transaction;
            command.Prepare();
            commands[sql] = command;
        }

        command.Transaction = transaction;
        for (var i = 0; i < parameters.Length; i++)
        {
            command.Parameters[i].Value = parameters[i].Value ?? DBNull.Value;
        }

        return command;
    }
}
