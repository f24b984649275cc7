using SessionMiddleware.Ids;

namespace SessionMiddleware.Concurrency;

/// <summary>
/// Striped async locks by session key: commits of the same session in this process take turns (different
/// sessions almost never share a stripe). Holds no state per session, so it never grows.
/// </summary>
internal sealed class CommitLocks
{
    private const int StripeCount = 1024;
    private readonly AsyncLock[] _stripes = [.. Enumerable.Range(0, StripeCount).Select(_ => new AsyncLock())];

    public ValueTask<AsyncLock.Releaser> EnterAsync(byte[] key, CancellationToken cancellationToken) =>
        _stripes[StripeOf(key)].EnterAsync(cancellationToken);

    /// <summary>The stripe of <paramref name="key"/>: from its hash bytes, never its time prefix (see <see cref="SessionIds.HashOf"/>).</summary>
    internal static int StripeOf(byte[] key) => SessionIds.HashOf(key) & (StripeCount - 1);
}
