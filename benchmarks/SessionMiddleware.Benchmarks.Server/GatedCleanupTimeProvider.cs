namespace SessionMiddleware.Benchmarks.Server;

/// <summary>
/// The system clock, except that a timer created with the sentinel period (or at least half of it) does not run by itself: it ticks
/// when <see cref="Fire"/> is called. The library's cleaner builds its <c>PeriodicTimer</c> from the DI
/// <see cref="TimeProvider"/> with <c>CleanupInterval</c>, so setting that to the sentinel lets the cleanup
/// benchmark start a cleaner run at a chosen moment without reaching into the library.
/// </summary>
internal sealed class GatedCleanupTimeProvider(TimeSpan sentinel) : TimeProvider
{
    /// <summary>An interval nothing else uses.</summary>
    public static readonly TimeSpan SentinelPeriod = TimeSpan.FromSeconds(86_399);

    private readonly Lock _lock = new();
    private readonly List<GatedTimer> _timers = [];

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        // The cleaner's first run comes after a random half-to-whole interval (jitter for several nodes), so every
        // timer from half the sentinel up is the cleaner's.
        if (period < sentinel / 2 && dueTime < sentinel / 2)
        {
            return System.CreateTimer(callback, state, dueTime, period);
        }

        var timer = new GatedTimer(callback, state);
        lock (_lock)
        {
            _timers.Add(timer);
        }

        return timer;
    }

    /// <summary>Ticks every gated timer once; returns how many ticked.</summary>
    public int Fire()
    {
        GatedTimer[] timers;
        lock (_lock)
        {
            _timers.RemoveAll(t => t.Disposed);
            timers = [.. _timers];
        }

        foreach (var timer in timers)
        {
            timer.Tick();
        }

        return timers.Length;
    }

    private sealed class GatedTimer(TimerCallback callback, object? state) : ITimer
    {
        public bool Disposed { get; private set; }

        public void Tick()
        {
            if (!Disposed)
            {
                ThreadPool.UnsafeQueueUserWorkItem(_ => callback(state), null);
            }
        }

        public bool Change(TimeSpan dueTime, TimeSpan period) => !Disposed;

        public void Dispose() => Disposed = true;

        public ValueTask DisposeAsync()
        {
            Disposed = true;
            return ValueTask.CompletedTask;
        }
    }
}
