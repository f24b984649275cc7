using System.Data;
using System.Data.Common;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Reflection;

namespace SessionMiddleware.Storage;

/// <summary>
/// One statement of the stores: its text, its parameters (the public properties of an object, <c>@Name</c> in the
/// text), transaction, timeout and cancellation; run with the <see cref="SqlStatementExtensions"/> methods.
/// </summary>
/// <remarks>
/// The stores' statements in the shape of Dapper's <c>CommandDefinition</c>, without Dapper's IL emitted at run time:
/// parameters and rows are read and written through the properties of types the trimmer keeps
/// (<see cref="DynamicallyAccessedMembersAttribute"/>), so the packages trim and run under Native AOT.
/// </remarks>
internal readonly struct SqlStatement
{
    private readonly Action<DbCommand>? _bind;

    private SqlStatement(string text, Action<DbCommand>? bind, DbTransaction? transaction, int? commandTimeout, CancellationToken cancellationToken)
    {
        Text = text;
        _bind = bind;
        Transaction = transaction;
        CommandTimeout = commandTimeout;
        CancellationToken = cancellationToken;
    }

    /// <summary>The SQL text.</summary>
    public string Text { get; }

    /// <summary>The transaction to run in, or <see langword="null"/>.</summary>
    public DbTransaction? Transaction { get; }

    /// <summary>The command timeout in seconds (0 for none), or <see langword="null"/> for the driver's default.</summary>
    public int? CommandTimeout { get; }

    /// <summary>Cancels the statement.</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>A statement without parameters.</summary>
    /// <param name="text">The SQL text.</param>
    /// <param name="transaction">The transaction to run in, or <see langword="null"/>.</param>
    /// <param name="commandTimeout">The command timeout in seconds (0 for none), or <see langword="null"/> for the driver's default.</param>
    /// <param name="cancellationToken">Cancels the statement.</param>
    /// <returns>The statement.</returns>
    public static SqlStatement Of(string text, DbTransaction? transaction = null, int? commandTimeout = null, CancellationToken cancellationToken = default) =>
        new(text, null, transaction, commandTimeout, cancellationToken);

    /// <summary>A statement whose parameters are the public properties of <paramref name="parameters"/> that its text names (<c>@Name</c>).</summary>
    /// <typeparam name="TParameters">The parameters' type (an anonymous type or a record).</typeparam>
    /// <param name="text">The SQL text.</param>
    /// <param name="parameters">The parameters.</param>
    /// <param name="transaction">The transaction to run in, or <see langword="null"/>.</param>
    /// <param name="commandTimeout">The command timeout in seconds (0 for none), or <see langword="null"/> for the driver's default.</param>
    /// <param name="cancellationToken">Cancels the statement.</param>
    /// <returns>The statement.</returns>
    public static SqlStatement Of<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties)] TParameters>(
        string text, TParameters parameters, DbTransaction? transaction = null, int? commandTimeout = null, CancellationToken cancellationToken = default)
        where TParameters : notnull =>
        new(text, command => SqlParameters<TParameters>.Bind(command, parameters), transaction, commandTimeout, cancellationToken);

    /// <summary>The command on <paramref name="connection"/>, its parameters bound; the caller disposes it.</summary>
    /// <param name="connection">An open connection.</param>
    /// <returns>The command.</returns>
    public DbCommand CreateCommand(DbConnection connection)
    {
        var command = connection.CreateCommand();
#pragma warning disable CA2100 // The stores' texts: table names validated and quoted, every value a parameter.
        command.CommandText = Text;
#pragma warning restore CA2100
        command.Transaction = Transaction;
        if (CommandTimeout is { } timeout)
        {
            command.CommandTimeout = timeout;
        }

        _bind?.Invoke(command);
        return command;
    }
}

/// <summary>Binds the public properties of <typeparamref name="T"/> that a statement names as its parameters.</summary>
/// <typeparam name="T">The parameters' type.</typeparam>
internal static class SqlParameters<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties)] T>
{
    private static readonly (string Name, DbType? Type, Func<T, object?> Get)[] Properties =
        [.. typeof(T).GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(static p => p.CanRead && p.GetIndexParameters().Length == 0)
            .Select(static p => (p.Name, SqlValues.DbTypeOf(p.PropertyType), (Func<T, object?>)(value => p.GetValue(value))))];

    public static void Bind(DbCommand command, T parameters)
    {
        var text = command.CommandText;
        foreach (var (name, type, get) in Properties)
        {
            // As Dapper does: only the properties the text names, so one object can serve several statements.
            if (!SqlValues.Names(text, name))
            {
                continue;
            }

            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            if (type is { } dbType)
            {
                parameter.DbType = dbType;
            }

            parameter.Value = get(parameters) ?? DBNull.Value;
            command.Parameters.Add(parameter);
        }
    }
}

/// <summary>Reads a row into a <typeparamref name="T"/>: its public settable properties by column name (any case), or column 0 for a single value.</summary>
/// <typeparam name="T">The row's type.</typeparam>
internal static class SqlRows<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor | DynamicallyAccessedMemberTypes.PublicProperties)] T>
{
    private static readonly bool IsValue = SqlValues.IsSingleValue(typeof(T));

    private static readonly Dictionary<string, PropertyInfo> Properties = IsValue
        ? []
        : typeof(T).GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(static p => p.CanWrite && p.GetIndexParameters().Length == 0)
            .ToDictionary(static p => p.Name, StringComparer.OrdinalIgnoreCase);

    public static T Read(DbDataReader reader)
    {
        if (IsValue)
        {
            return SqlValues.Convert(reader.GetValue(0), typeof(T)) is { } value ? (T)value : default!;
        }

        if (Properties.Count == 0)
        {
            // A tuple's element names do not exist at run time: it would read as all defaults.
            throw new NotSupportedException($"{typeof(T)} has no public settable property to read a row into.");
        }

        var row = Activator.CreateInstance<T>();
        for (var i = 0; i < reader.FieldCount; i++)
        {
            if (Properties.TryGetValue(reader.GetName(i), out var property))
            {
                property.SetValue(row, SqlValues.Convert(reader.GetValue(i), property.PropertyType));
            }
        }

        return row;
    }
}

/// <summary>The conversions between the drivers' values and the properties'.</summary>
internal static class SqlValues
{
    /// <summary>Whether a row of <paramref name="type"/> is column 0 itself (a number, text or bytes) rather than an object of columns.</summary>
    public static bool IsSingleValue(Type type)
    {
        var underlying = Nullable.GetUnderlyingType(type) ?? type;
        return underlying.IsPrimitive || underlying == typeof(string) || underlying == typeof(byte[]) || underlying == typeof(decimal);
    }

    /// <summary>The parameter type Dapper would give a property of <paramref name="type"/> (so that a null is typed), or <see langword="null"/> to let the driver choose.</summary>
    public static DbType? DbTypeOf(Type type) => (Nullable.GetUnderlyingType(type) ?? type) switch
    {
        var t when t == typeof(long) => DbType.Int64,
        var t when t == typeof(int) => DbType.Int32,
        var t when t == typeof(string) => DbType.String,
        var t when t == typeof(byte[]) => DbType.Binary,
        var t when t == typeof(bool) => DbType.Boolean,
        var t when t == typeof(double) => DbType.Double,
        _ => null,
    };

    /// <summary>Whether <paramref name="text"/> names the parameter <c>@<paramref name="name"/></c> (not as the start of a longer name).</summary>
    public static bool Names(string text, string name)
    {
        for (var at = text.IndexOf('@', StringComparison.Ordinal); at >= 0; at = text.IndexOf('@', at + 1))
        {
            var end = at + 1 + name.Length;
            if (string.CompareOrdinal(text, at + 1, name, 0, name.Length) == 0 &&
                (end == text.Length || !(char.IsLetterOrDigit(text[end]) || text[end] == '_')))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>A column's value as a <paramref name="type"/>: <see cref="DBNull"/> as null, numbers converted (SQLite's integers are all 64-bit).</summary>
    public static object? Convert(object value, Type type)
    {
        if (value is DBNull)
        {
            return null;
        }

        var underlying = Nullable.GetUnderlyingType(type) ?? type;
        return underlying.IsInstanceOfType(value) ? value : System.Convert.ChangeType(value, underlying, CultureInfo.InvariantCulture);
    }
}
