using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http;
using SessionMiddleware.Logging;
using SessionMiddleware.Session;

namespace SessionMiddleware;

/// <summary>
/// Typed session values over System.Text.Json, for any <see cref="ISession"/>: <c>Set&lt;T&gt;</c> stores a value as
/// UTF-8 JSON through <see cref="ISession.Set"/> (so <see cref="ServerSideSessionOptions.MaxSessionBytes"/> applies as
/// to any value), <c>Get&lt;T&gt;</c> and <c>TryGet&lt;T&gt;</c> read it back. The overloads that take a
/// <see cref="JsonTypeInfo{T}"/> (from a source-generated <c>JsonSerializerContext</c>) are safe under trimming and
/// Native AOT; the others serialize with <see cref="JsonSerializerOptions.Default"/>, which needs reflection.
/// </summary>
/// <remarks>
/// A stored value that no longer reads as <c>T</c> (its type changed between deployments, or it was stored as a string
/// or bytes): <c>Get&lt;T&gt;</c> throws an <see cref="InvalidOperationException"/> naming the key and the type, with the
/// <see cref="JsonException"/> as its inner exception; <c>TryGet&lt;T&gt;</c> returns <see langword="false"/> and, on a
/// session of this library, logs a Warning (<c>SessionValueUnreadable</c>) naming the key and the type, never the value.
/// Neither changes the stored value.
/// </remarks>
public static class SessionJsonExtensions
{
    private const string ReflectionMessage =
        "JSON serialization of T with JsonSerializerOptions.Default needs reflection, which trimming and Native AOT do not keep: " +
        "use the overload that takes a JsonTypeInfo<T> from a source-generated JsonSerializerContext.";

    /// <summary>Stores <paramref name="value"/> under <paramref name="key"/> as UTF-8 JSON (<see cref="JsonSerializerOptions.Default"/>).</summary>
    /// <typeparam name="T">The value's type.</typeparam>
    /// <param name="session">The session.</param>
    /// <param name="key">The key (ordinal, case-sensitive).</param>
    /// <param name="value">The value; <see langword="null"/> is stored as JSON <c>null</c>.</param>
    /// <exception cref="InvalidOperationException">The session would outgrow <see cref="ServerSideSessionOptions.MaxSessionBytes"/>; nothing is stored.</exception>
    [RequiresUnreferencedCode(ReflectionMessage)]
    [RequiresDynamicCode(ReflectionMessage)]
    public static void Set<T>(this ISession session, string key, T value) => session.Set(key, value, DefaultTypeInfo<T>());

    /// <summary>Stores <paramref name="value"/> under <paramref name="key"/> as UTF-8 JSON, with the given (source-generated) contract.</summary>
    /// <typeparam name="T">The value's type.</typeparam>
    /// <param name="session">The session.</param>
    /// <param name="key">The key (ordinal, case-sensitive).</param>
    /// <param name="value">The value; <see langword="null"/> is stored as JSON <c>null</c>.</param>
    /// <param name="jsonTypeInfo">The contract of <typeparamref name="T"/>, e.g. <c>MyJsonContext.Default.Cart</c>.</param>
    /// <exception cref="InvalidOperationException">The session would outgrow <see cref="ServerSideSessionOptions.MaxSessionBytes"/>; nothing is stored.</exception>
    public static void Set<T>(this ISession session, string key, T value, JsonTypeInfo<T> jsonTypeInfo)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(jsonTypeInfo);
        session.Set(key, JsonSerializer.SerializeToUtf8Bytes(value, jsonTypeInfo));
    }

    /// <summary>The value stored under <paramref name="key"/>, read as <typeparamref name="T"/> (<see cref="JsonSerializerOptions.Default"/>).</summary>
    /// <typeparam name="T">The value's type.</typeparam>
    /// <param name="session">The session.</param>
    /// <param name="key">The key (ordinal, case-sensitive).</param>
    /// <returns>The value; <c>default(T)</c> when the key is missing (use a nullable <typeparamref name="T"/> to tell 0 from missing).</returns>
    /// <exception cref="InvalidOperationException">The stored value does not read as <typeparamref name="T"/> (inner: the <see cref="JsonException"/>).</exception>
    [RequiresUnreferencedCode(ReflectionMessage)]
    [RequiresDynamicCode(ReflectionMessage)]
    public static T? Get<T>(this ISession session, string key) => session.Get(key, DefaultTypeInfo<T>());

    /// <summary>The value stored under <paramref name="key"/>, read as <typeparamref name="T"/> with the given (source-generated) contract.</summary>
    /// <typeparam name="T">The value's type.</typeparam>
    /// <param name="session">The session.</param>
    /// <param name="key">The key (ordinal, case-sensitive).</param>
    /// <param name="jsonTypeInfo">The contract of <typeparamref name="T"/>, e.g. <c>MyJsonContext.Default.Cart</c>.</param>
    /// <returns>The value; <c>default(T)</c> when the key is missing (use a nullable <typeparamref name="T"/> to tell 0 from missing).</returns>
    /// <exception cref="InvalidOperationException">The stored value does not read as <typeparamref name="T"/> (inner: the <see cref="JsonException"/>).</exception>
    public static T? Get<T>(this ISession session, string key, JsonTypeInfo<T> jsonTypeInfo)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(jsonTypeInfo);
        if (!session.TryGetValue(key, out var bytes))
        {
            return default;
        }

        try
        {
            return JsonSerializer.Deserialize(bytes, jsonTypeInfo);
        }
        catch (JsonException exception)
        {
            throw new InvalidOperationException(
                $"The session value '{key}' cannot be read as {typeof(T)}: it was stored as another type or shape (e.g. the type changed " +
                "since it was stored). Remove it or store it again; TryGet returns false for it instead of throwing.", exception);
        }
    }

    /// <summary>Reads the value stored under <paramref name="key"/> as <typeparamref name="T"/> (<see cref="JsonSerializerOptions.Default"/>).</summary>
    /// <typeparam name="T">The value's type.</typeparam>
    /// <param name="session">The session.</param>
    /// <param name="key">The key (ordinal, case-sensitive).</param>
    /// <param name="value">The value (JSON <c>null</c> reads as <see langword="null"/>); <c>default(T)</c> when false is returned.</param>
    /// <returns>
    /// <see langword="true"/> when the key holds a value that reads as <typeparamref name="T"/>; <see langword="false"/> when it
    /// is missing, or holds a value that does not (logged as a Warning on a session of this library).
    /// </returns>
    [RequiresUnreferencedCode(ReflectionMessage)]
    [RequiresDynamicCode(ReflectionMessage)]
    public static bool TryGet<T>(this ISession session, string key, [MaybeNullWhen(false)] out T value) =>
        session.TryGet(key, DefaultTypeInfo<T>(), out value);

    /// <summary>Reads the value stored under <paramref name="key"/> as <typeparamref name="T"/> with the given (source-generated) contract.</summary>
    /// <typeparam name="T">The value's type.</typeparam>
    /// <param name="session">The session.</param>
    /// <param name="key">The key (ordinal, case-sensitive).</param>
    /// <param name="jsonTypeInfo">The contract of <typeparamref name="T"/>, e.g. <c>MyJsonContext.Default.Cart</c>.</param>
    /// <param name="value">The value (JSON <c>null</c> reads as <see langword="null"/>); <c>default(T)</c> when false is returned.</param>
    /// <returns>
    /// <see langword="true"/> when the key holds a value that reads as <typeparamref name="T"/>; <see langword="false"/> when it
    /// is missing, or holds a value that does not (logged as a Warning on a session of this library).
    /// </returns>
    public static bool TryGet<T>(this ISession session, string key, JsonTypeInfo<T> jsonTypeInfo, [MaybeNullWhen(false)] out T value)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(jsonTypeInfo);
        value = default;
        if (!session.TryGetValue(key, out var bytes))
        {
            return false;
        }

        try
        {
            value = JsonSerializer.Deserialize(bytes, jsonTypeInfo)!;
            return true;
        }
        catch (JsonException exception)
        {
            if (session is ServerSideSession { Logger: { } logger } ours)
            {
                Log.SessionValueUnreadable(logger, ours.Key is null ? "(new)" : ours.Id, key, typeof(T).ToString(), exception.Path ?? "$");
            }

            return false;
        }
    }

    [RequiresUnreferencedCode(ReflectionMessage)]
    [RequiresDynamicCode(ReflectionMessage)]
    private static JsonTypeInfo<T> DefaultTypeInfo<T>() => (JsonTypeInfo<T>)JsonSerializerOptions.Default.GetTypeInfo(typeof(T));
}
