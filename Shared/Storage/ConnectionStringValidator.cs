using Microsoft.Extensions.Options;

namespace SessionMiddleware.Storage;

/// <summary>
/// Checks <see cref="ServerSideSessionOptions.ConnectionString"/> at startup for one database, so that a wrong string
/// fails naming the option instead of at the first request. A store registers its subclass as an
/// <see cref="IValidateOptions{TOptions}"/> of <see cref="ServerSideSessionOptions"/>.
/// </summary>
internal abstract class ConnectionStringValidator : IValidateOptions<ServerSideSessionOptions>
{
    /// <summary>The option's name as the failure messages give it.</summary>
    protected const string OptionName = nameof(ServerSideSessionOptions) + "." + nameof(ServerSideSessionOptions.ConnectionString);

    /// <summary>The database's name for messages, for example <c>SQLite</c>.</summary>
    protected abstract string DatabaseName { get; }

    /// <inheritdoc/>
    public ValidateOptionsResult Validate(string? name, ServerSideSessionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            return ValidateOptionsResult.Skip; // reported by the general validator
        }

        try
        {
            return Check(options.ConnectionString) is { } problem
                ? ValidateOptionsResult.Fail($"{OptionName} {problem}")
                : ValidateOptionsResult.Success;
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or InvalidOperationException or KeyNotFoundException)
        {
            return ValidateOptionsResult.Fail($"{OptionName} is not a valid {DatabaseName} connection string: {ex.Message}");
        }
    }

    /// <summary>
    /// Parses the connection string with the driver's builder. Returns <see langword="null"/> when it is usable, or
    /// what is wrong and how to fix it, phrased to follow the option's name (for example <c>names no SQLite file: …</c>).
    /// A driver exception (<see cref="ArgumentException"/>, <see cref="FormatException"/>, …) means the string is not valid.
    /// </summary>
    /// <param name="connectionString">The configured connection string, not blank.</param>
    /// <returns>The problem, or <see langword="null"/>.</returns>
    protected abstract string? Check(string connectionString);
}
