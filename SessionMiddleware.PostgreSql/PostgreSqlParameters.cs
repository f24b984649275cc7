using Npgsql;
using NpgsqlTypes;

namespace SessionMiddleware.PostgreSql;

/// <summary>The store's statements and their parameters, typed (a null value is sent as SQL NULL).</summary>
internal static class PostgreSqlParameters
{
    /// <summary>A batch statement with <paramref name="parameters"/>.</summary>
    public static NpgsqlBatchCommand Command(string sql, params ReadOnlySpan<NpgsqlParameter> parameters)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(parameter);
        }

        return command;
    }

    public static NpgsqlParameter Bytes(string name, byte[] value) => new(name, NpgsqlDbType.Bytea) { Value = value };

    public static NpgsqlParameter Text(string name, string? value) => new(name, NpgsqlDbType.Text) { Value = (object?)value ?? DBNull.Value };

    public static NpgsqlParameter Int64(string name, long? value) => new(name, NpgsqlDbType.Bigint) { Value = value is { } v ? v : DBNull.Value };

    /// <summary>A positional array parameter (<c>$n::type[]</c>) of <paramref name="element"/> values.</summary>
    public static NpgsqlParameter<T[]> ArrayOf<T>(T[] values, NpgsqlDbType element) => new() { NpgsqlDbType = NpgsqlDbType.Array | element, TypedValue = values };
}
