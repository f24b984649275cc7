namespace SessionMiddleware;

/// <summary>
/// A position in the order of a session query (creation time descending, then key descending): a page continues
/// with the sessions after it. Keyset paging, so it stays right while rows are added and removed.
/// </summary>
/// <param name="CreatedAt">The creation time of the last session of the previous page, in Unix seconds.</param>
/// <param name="Key">The key (SHA-256 of the secret ID) of that session.</param>
public sealed record SessionCursor(long CreatedAt, byte[] Key);
