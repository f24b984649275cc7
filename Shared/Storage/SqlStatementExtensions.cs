using System.Data;
using System.Data.Common;
using System.Diagnostics.CodeAnalysis;

namespace SessionMiddleware.Storage;

/// <summary>Runs a <see cref="SqlStatement"/> on a connection (opened for the call when it is closed), as Dapper's methods of the same names do.</summary>
internal static class SqlStatementExtensions
{
    private const DynamicallyAccessedMemberTypes RowMembers =
        DynamicallyAccessedMemberTypes.PublicParameterlessConstructor | DynamicallyAccessedMemberTypes.PublicProperties;

    /// <summary>Runs the statement.</summary>
    /// <returns>The number of rows it changed.</returns>
    public static Task<int> ExecuteAsync(this DbConnection connection, SqlStatement statement) =>
        RunAsync(connection, statement, static (command, token) => command.ExecuteNonQueryAsync(token));

    /// <summary>Runs the statement and returns the first column of its first row.</summary>
    /// <returns>The value, or the default of <typeparamref name="T"/> when there is no row or the value is null.</returns>
    public static Task<T?> ExecuteScalarAsync<T>(this DbConnection connection, SqlStatement statement) =>
        RunAsync(connection, statement, static async (command, token) =>
            SqlValues.Convert(await command.ExecuteScalarAsync(token).ConfigureAwait(false) ?? DBNull.Value, typeof(T)) is { } value ? (T?)value : default);

    /// <summary>Runs the statement and reads every row.</summary>
    /// <returns>The rows, in order.</returns>
    public static Task<List<T>> QueryAsync<[DynamicallyAccessedMembers(RowMembers)] T>(this DbConnection connection, SqlStatement statement) =>
        connection.QueryAsync(statement, SqlRows<T>.Read);

    /// <summary>Runs the statement and reads every row with <paramref name="read"/> (by position, for a listing of many rows).</summary>
    /// <returns>The rows, in order.</returns>
    public static Task<List<T>> QueryAsync<T>(this DbConnection connection, SqlStatement statement, Func<DbDataReader, T> read) =>
        RunAsync(connection, statement, async (command, token) =>
        {
            var reader = await command.ExecuteReaderAsync(token).ConfigureAwait(false);
            await using var readerScope = reader.ConfigureAwait(false);
            var rows = new List<T>();
            while (await reader.ReadAsync(token).ConfigureAwait(false))
            {
                rows.Add(read(reader));
            }

            return rows;
        });

    /// <summary>Runs the statement and reads its one row.</summary>
    /// <returns>The row.</returns>
    /// <exception cref="InvalidOperationException">The statement returned no row, or more than one.</exception>
    public static async Task<T> QuerySingleAsync<[DynamicallyAccessedMembers(RowMembers)] T>(this DbConnection connection, SqlStatement statement)
    {
        var rows = await connection.QueryAsync<T>(statement).ConfigureAwait(false);
        return rows.Count == 1 ? rows[0] : throw new InvalidOperationException($"The statement returned {rows.Count} rows, not one.");
    }

    /// <summary>Runs the statement and reads its row, if any.</summary>
    /// <returns>The row, or the default of <typeparamref name="T"/> when there is none.</returns>
    /// <exception cref="InvalidOperationException">The statement returned more than one row.</exception>
    public static Task<T?> QuerySingleOrDefaultAsync<[DynamicallyAccessedMembers(RowMembers)] T>(this DbConnection connection, SqlStatement statement) =>
        connection.QuerySingleOrDefaultAsync(statement, SqlRows<T>.Read);

    /// <summary>Runs the statement and reads its row, if any, with <paramref name="read"/>.</summary>
    /// <returns>The row, or the default of <typeparamref name="T"/> when there is none.</returns>
    /// <exception cref="InvalidOperationException">The statement returned more than one row.</exception>
    public static async Task<T?> QuerySingleOrDefaultAsync<T>(this DbConnection connection, SqlStatement statement, Func<DbDataReader, T> read)
    {
        var rows = await connection.QueryAsync(statement, read).ConfigureAwait(false);
        return rows.Count switch
        {
            0 => default,
            1 => rows[0],
            _ => throw new InvalidOperationException($"The statement returned {rows.Count} rows, not one or none."),
        };
    }

    private static async Task<TResult> RunAsync<TResult>(DbConnection connection, SqlStatement statement, Func<DbCommand, CancellationToken, Task<TResult>> run)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var wasClosed = connection.State == ConnectionState.Closed;
        if (wasClosed)
        {
            await connection.OpenAsync(statement.CancellationToken).ConfigureAwait(false);
        }

        try
        {
            var command = statement.CreateCommand(connection);
            await using var commandScope = command.ConfigureAwait(false);
            return await run(command, statement.CancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (wasClosed)
            {
                await connection.CloseAsync().ConfigureAwait(false);
            }
        }
    }
}
