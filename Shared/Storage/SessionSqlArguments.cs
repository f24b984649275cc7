namespace SessionMiddleware.Storage;

// The parameters of the statements whose values a helper of SessionSql assembles, as named types: SqlStatement binds the
// public properties of the static type of its argument (kept by the trimmer), which an anonymous object returned as
// `object` hides.

/// <summary>The parameters of <see cref="SessionSql.ListExpired"/> (<see cref="SessionSql.ListExpiredParameters"/>).</summary>
/// <param name="Now">"Now", Unix seconds.</param>
/// <param name="AfterExpiresAt">The expiry of the previous batch's last row, or <see cref="long.MinValue"/>.</param>
/// <param name="AfterId">The key of the previous batch's last row, or empty.</param>
/// <param name="Limit">The most rows.</param>
internal sealed record ListExpiredArguments(long Now, long AfterExpiresAt, byte[] AfterId, int Limit);

/// <summary>The parameters of <see cref="SessionSql.SignInCondition"/> (<see cref="SessionSql.SignInFilterParameters"/>).</summary>
/// <param name="Issuer">The provider's issuer.</param>
/// <param name="Sid">The provider's session ID.</param>
/// <param name="Subject">The user's subject at the provider.</param>
/// <param name="UserId">The user.</param>
/// <param name="CredentialStamp">The current credential stamp hash.</param>
/// <param name="ExceptId">The key of a row to keep, or <see langword="null"/>.</param>
/// <param name="Limit">The most rows.</param>
internal sealed record SignInFilterArguments(
    string? Issuer, string? Sid, string? Subject, string? UserId, string? CredentialStamp, byte[]? ExceptId, int Limit);

/// <summary>The parameters of a renewal (<see cref="SessionSql.RenewParameters"/>).</summary>
internal sealed record RenewArguments
{
    /// <summary>The current key.</summary>
    public required byte[] OldId { get; init; }

    /// <summary>The version the caller loaded.</summary>
    public required long ExpectedVersion { get; init; }

    /// <summary>The new key.</summary>
    public required byte[] NewId { get; init; }

    /// <summary>The user the session is bound to, if any.</summary>
    public required string? UserId { get; init; }

    /// <summary>The serialized session data.</summary>
    public required byte[] Data { get; init; }

    /// <summary>The client's IP address, if recorded.</summary>
    public required string? Ip { get; init; }

    /// <summary>The client's User-Agent, if recorded.</summary>
    public required string? UserAgent { get; init; }

    /// <summary>The expiry the caller gave, Unix seconds, or <see langword="null"/> for the default.</summary>
    public required long? ExpiresAt { get; init; }

    /// <summary>The sign-in's time, Unix seconds, or <see langword="null"/>.</summary>
    public required long? SignedInAt { get; init; }

    /// <summary>The provider's issuer, or <see langword="null"/>.</summary>
    public required string? IdpIssuer { get; init; }

    /// <summary>The provider's session ID, or <see langword="null"/>.</summary>
    public required string? IdpSid { get; init; }

    /// <summary>The user's subject at the provider, or <see langword="null"/>.</summary>
    public required string? IdpSubject { get; init; }

    /// <summary>The credential stamp hash, or <see langword="null"/>.</summary>
    public required string? CredentialStamp { get; init; }

    /// <summary>"Now", Unix seconds.</summary>
    public required long Now { get; init; }

    /// <summary>The idle timeout, seconds.</summary>
    public required long IdleSeconds { get; init; }

    /// <summary>The absolute timeout, seconds (a value past any real date without one).</summary>
    public required long AbsoluteSeconds { get; init; }
}
