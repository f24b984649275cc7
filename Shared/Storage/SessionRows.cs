using System.Data.Common;

namespace SessionMiddleware.Storage;

/// <summary>
/// A session row as <see cref="SessionSql.Load"/> returns it (columns aliased to these names, so a micro-ORM such as
/// Dapper maps it by name; <see cref="SessionSql.LoadColumns"/> gives the positions for a raw reader).
/// </summary>
internal sealed class SessionRow
{
    /// <summary>The serialized data.</summary>
    public byte[]? Data { get; set; }

    /// <summary>The row's version.</summary>
    public long Version { get; set; }

    /// <summary>The user the row is bound to, if any.</summary>
    public string? UserId { get; set; }

    /// <summary>Creation time, Unix seconds.</summary>
    public long CreatedAt { get; set; }

    /// <summary>Last recorded access, Unix seconds.</summary>
    public long LastAccess { get; set; }

    /// <summary>When the row expires, Unix seconds.</summary>
    public long ExpiresAt { get; set; }

    /// <summary><c>signed_in_at</c>: null when the row records no sign-in.</summary>
    public long? SignedInAt { get; set; }

    /// <summary><c>idp_issuer</c>.</summary>
    public string? IdpIssuer { get; set; }

    /// <summary><c>idp_sid</c>.</summary>
    public string? IdpSid { get; set; }

    /// <summary><c>idp_subject</c>.</summary>
    public string? IdpSubject { get; set; }

    /// <summary><c>credential_stamp</c>.</summary>
    public string? CredentialStamp { get; set; }

    /// <summary>A copy of the row (the SQLite store's row cache never changes a row it handed out).</summary>
    /// <returns>The copy.</returns>
    public SessionRow Clone() => (SessionRow)MemberwiseClone();

    /// <summary>The row as the store contract returns it.</summary>
    /// <param name="key">The key the row was loaded by.</param>
    /// <returns>The stored session.</returns>
    public StoredSession ToStoredSession(byte[] key) => new(
        key,
        Data ?? [],
        Version,
        UserId,
        DateTimeOffset.FromUnixTimeSeconds(CreatedAt),
        DateTimeOffset.FromUnixTimeSeconds(LastAccess),
        DateTimeOffset.FromUnixTimeSeconds(ExpiresAt))
    {
        SignIn = SignedInAt is { } at ? new SessionSignIn(DateTimeOffset.FromUnixTimeSeconds(at), IdpIssuer, IdpSid, IdpSubject, CredentialStamp) : null,
    };
}

/// <summary>A session row as <see cref="SessionSql.ListByUser"/> returns it.</summary>
internal sealed class SessionInfoRow
{
    /// <summary>The key (SHA-256 of the secret ID).</summary>
    public byte[] Id { get; set; } = [];

    /// <summary>The user the row is bound to, if any.</summary>
    public string? UserId { get; set; }

    /// <summary>Creation time, Unix seconds.</summary>
    public long CreatedAt { get; set; }

    /// <summary>Last recorded access, Unix seconds.</summary>
    public long LastAccess { get; set; }

    /// <summary>The client's IP address when the session was created, if recorded.</summary>
    public string? Ip { get; set; }

    /// <summary>The client's User-Agent when the session was created, if recorded.</summary>
    public string? UserAgent { get; set; }

    /// <summary>The row as the management API shows it, its <see cref="SessionInfo.Id"/> the public ID (lowercase hex of the key).</summary>
    /// <returns>The session's description.</returns>
    public SessionInfo ToSessionInfo() => new(
        Convert.ToHexStringLower(Id), // the public ID, as SessionInfo.Id defines it
        UserId,
        DateTimeOffset.FromUnixTimeSeconds(CreatedAt),
        DateTimeOffset.FromUnixTimeSeconds(LastAccess),
        Ip,
        UserAgent);
}

/// <summary>
/// A row as the statements that return <see cref="SessionLifetime"/> give it: <see cref="SessionSql.LifetimeColumns"/>
/// (key, user, creation and expiry in Unix seconds), in that order.
/// </summary>
internal static class SessionLifetimeRow
{
    /// <summary>
    /// Reads the current row, by position: a cleanup run lists a million rows, and mapping each by name and reflection
    /// cost more than the query.
    /// </summary>
    /// <param name="reader">The reader, on a row.</param>
    /// <returns>The key, user and lifetime.</returns>
    public static SessionLifetime Read(DbDataReader reader) => new(
        reader.GetFieldValue<byte[]>(0),
        reader.IsDBNull(1) ? null : reader.GetString(1),
        DateTimeOffset.FromUnixTimeSeconds(reader.GetInt64(2)),
        DateTimeOffset.FromUnixTimeSeconds(reader.GetInt64(3)));
}
