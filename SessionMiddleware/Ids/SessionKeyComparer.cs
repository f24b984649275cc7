namespace SessionMiddleware.Ids;

/// <summary>
/// Session keys as dictionary keys, equal by content. Keys end in SHA-256 output: their last bytes are a good hash code
/// already (never the first: see <see cref="SessionIds.HashOf"/>).
/// </summary>
internal sealed class SessionKeyComparer : IEqualityComparer<byte[]>
{
    public static readonly SessionKeyComparer Instance = new();

    public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

    public int GetHashCode(byte[] obj) => SessionIds.HashOf(obj);
}
