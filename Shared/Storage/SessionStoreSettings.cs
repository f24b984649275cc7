namespace SessionMiddleware.Storage;

/// <summary>
/// What a SQL store uses of <see cref="ServerSideSessionOptions"/> beside its connection: its table and the timeouts
/// that decide each row's expiry. Read once from the options when the store is built.
/// </summary>
/// <param name="TableName">The session table's name.</param>
/// <param name="IdleTimeout">The idle timeout.</param>
/// <param name="AbsoluteTimeout">The absolute timeout, or <see langword="null"/> for none.</param>
internal sealed record SessionStoreSettings(string TableName, TimeSpan IdleTimeout, TimeSpan? AbsoluteTimeout)
{
    /// <summary>The settings of <paramref name="options"/>.</summary>
    public static SessionStoreSettings From(ServerSideSessionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new(options.TableName, options.IdleTimeout, options.AbsoluteTimeout);
    }

    /// <summary>The expiry rules of these timeouts, "now" read from <paramref name="timeProvider"/>.</summary>
    public SessionExpiry Expiry(TimeProvider timeProvider) => new(IdleTimeout, AbsoluteTimeout, timeProvider);
}
