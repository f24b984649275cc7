namespace SessionMiddleware;

/// <summary>
/// Striped async locks by session key: commits of the same session in this process take turns (different
/// sessions almost never share a stripe). Holds no state per session, so it never grows.
/// </summary>
internal sealed class CommitLocks
{
    private const int StripeCount = 1024;
    private readonly SemaphoreSlim[] _stripes = CreateStripes();

    public async ValueTask<Releaser> EnterAsync(byte[] key, CancellationToken cancellationToken)
    {
        var stripe = _stripes[(key[0] | (key[1] << 8)) & (StripeCount - 1)];
        await stripe.WaitAsync(cancellationToken).ConfigureAwait(false);
        return new Releaser(stripe);
    }

    private static SemaphoreSlim[] CreateStripes()
    {
        var stripes = new SemaphoreSlim[StripeCount];
        for (var i = 0; i < stripes.Length; i++)
        {
            stripes[i] = new SemaphoreSlim(1, 1);
        }

        return stripes;
    }

    public readonly struct Releaser(SemaphoreSlim stripe) : IDisposable
    {
        public void Dispose() => stripe.Release();
    }
}
