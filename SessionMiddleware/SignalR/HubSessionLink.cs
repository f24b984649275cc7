using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Logging;
using SessionMiddleware.Live;

namespace SessionMiddleware.SignalR;

/// <summary>
/// One hub connection's tie to its session: the lease, the close when the session ends, and the gate that keeps a hub
/// method from starting once the end is reported (kept in <see cref="HubCallerContext.Items"/>).
/// </summary>
/// <remarks>
/// A method passes the gate by announcing itself (<see cref="TryEnterInvocation"/>) and then reading whether the
/// session has ended; the end marks the session ended and then, in its callback here, waits for the methods announced
/// to have started (their synchronous part up to the first await has run). Both sides fence, so either the method sees
/// the end and does not run, or the end sees the method and returns only once it has started: no method starts after
/// the call that ended the session (<see cref="ISessionManager.RevokeAsync"/>, a sign-out, …) has returned.
/// </remarks>
internal sealed class HubSessionLink : IDisposable
{
    /// <summary>How long an end waits for hub methods that passed the gate just before it to start.</summary>
    internal static readonly TimeSpan StartWaitLimit = TimeSpan.FromSeconds(1);

    [ThreadStatic]
    private static HubSessionLink? t_entering;

    private readonly HubCallerContext _context;
    private readonly ILogger _logger;
    private CancellationTokenRegistration _onEnded;
    private int _entering;
    private int _closed;

    public HubSessionLink(LiveSessionLease lease, HubCallerContext context, ILogger logger)
    {
        Lease = lease;
        _context = context;
        _logger = logger;
    }

    /// <summary>The connection's hold on its session.</summary>
    public LiveSessionLease Lease { get; }

    /// <summary>Whether the session has ended.</summary>
    public bool HasEnded => Lease.HasEnded;

    /// <summary>Closes the connection when the session ends (at once if it has ended already).</summary>
    public void CloseOnEnd() =>
        _onEnded = Lease.Ended.UnsafeRegister(static state => ((HubSessionLink)state!).Close(), this);

    /// <summary>
    /// Lets a hub method start unless the session has ended; on <see langword="true"/>, call
    /// <see cref="ExitInvocation"/> once the method's task is returned.
    /// </summary>
    public bool TryEnterInvocation()
    {
        Interlocked.Increment(ref _entering);
        if (HasEnded)
        {
            Interlocked.Decrement(ref _entering);
            return false;
        }

        t_entering = this;
        return true;
    }

    /// <summary>The hub method let in by <see cref="TryEnterInvocation"/> has started.</summary>
    public void ExitInvocation()
    {
        t_entering = null;
        Interlocked.Decrement(ref _entering);
    }

    /// <summary>Closes the connection because its session ended (once).</summary>
    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }

        SignalRLog.ConnectionClosedSessionEnded(_logger, _context.ConnectionId, Lease.PublicId);
        _context.Abort();

        // A method that passed the gate before the end starts before the end returns. One starting on this thread (it
        // ended its own session before its first await) is not waited for.
        var own = ReferenceEquals(t_entering, this) ? 1 : 0;
        if (Volatile.Read(ref _entering) > own)
        {
            SpinWait.SpinUntil(() => Volatile.Read(ref _entering) <= own, StartWaitLimit);
        }
    }

    /// <summary>Stops watching the session and lets it go.</summary>
    public void Dispose()
    {
        _onEnded.Dispose();
        Lease.Dispose();
    }
}
