using SessionMiddleware.Live;

namespace SessionMiddleware.Blazor;

/// <summary>
/// The session of one Blazor hub connection, held from its first call until a circuit claims it or the connection closes.
/// Each call of the connection runs with the slot as <see cref="Current"/>, so the circuit's scoped services, created
/// during those calls (<c>StartCircuit</c>; <c>UpdateRootComponents</c> for Blazor Web apps, which create their circuit
/// handlers there), find the session of the request that opened the connection.
/// </summary>
internal sealed class CircuitSessionSlot(LiveSessionLease? lease)
{
    private static readonly AsyncLocal<CircuitSessionSlot?> CurrentSlot = new();

    private LiveSessionLease? _lease = lease;

    /// <summary>The slot of the hub call running now (and of the work it started), or <see langword="null"/> outside one.</summary>
    public static CircuitSessionSlot? Current
    {
        get => CurrentSlot.Value;
        set => CurrentSlot.Value = value;
    }

    /// <summary>Takes the lease for a circuit: the first caller gets it, later ones (and callers after <see cref="Close"/>) get <see langword="null"/>.</summary>
    public LiveSessionLease? Claim() => Interlocked.Exchange(ref _lease, null);

    /// <summary>The connection closed: a lease no circuit claimed is released.</summary>
    public void Close() => Interlocked.Exchange(ref _lease, null)?.Dispose();
}
