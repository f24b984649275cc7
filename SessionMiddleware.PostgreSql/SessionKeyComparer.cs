namespace SessionMiddleware.PostgreSql;

/// <summary>Session keys compared bytewise: a total order every node agrees on, and equality by content.</summary>
internal sealed class SessionKeyComparer : IComparer<byte[]>, IEqualityComparer<byte[]>
{
    public static readonly SessionKeyComparer Instance = new();

    public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);

    public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

    public int GetHashCode(byte[] obj)
    {
        var hash = default(HashCode);
        hash.AddBytes(obj);
        return hash.ToHashCode();
    }
}
