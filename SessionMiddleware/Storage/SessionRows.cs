using SessionMiddleware.Cookies;

namespace SessionMiddleware.Storage;

/// <summary>A session row as every store's load query returns it (columns aliased to these names).</summary>
internal sealed class SessionRow
{
    public byte[]? Data { get; set; }

    public long Version { get; set; }

    public string? UserId { get; set; }

    public long CreatedAt { get; set; }

    public long LastAccess { get; set; }

    public StoredSession ToStoredSession(byte[] key) => new(
        key,
        Data ?? [],
        Version,
        UserId,
        DateTimeOffset.FromUnixTimeSeconds(CreatedAt),
        DateTimeOffset.FromUnixTimeSeconds(LastAccess));
}

/// <summary>A session row as every store's list-by-user query returns it.</summary>
internal sealed class SessionInfoRow
{
    public byte[] Id { get; set; } = [];

    public string? UserId { get; set; }

    public long CreatedAt { get; set; }

    public long LastAccess { get; set; }

    public string? Ip { get; set; }

    public string? UserAgent { get; set; }

    public SessionInfo ToSessionInfo() => new(
        SessionIdProtector.ToPublicId(Id),
        UserId,
        DateTimeOffset.FromUnixTimeSeconds(CreatedAt),
        DateTimeOffset.FromUnixTimeSeconds(LastAccess),
        Ip,
        UserAgent);
}
