using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Http;

namespace SessionMiddleware.Middleware;

/// <summary>
/// <see cref="ServerSideSessionOptions.NewSessionLimit"/>: at most that many new sessions per client and
/// <see cref="ServerSideSessionOptions.NewSessionLimitWindow"/>, in fixed windows that start at a client's first new
/// session. A client is its address (<c>Connection.RemoteIpAddress</c>, so forwarded-headers middleware applies); an
/// IPv6 client is its /64 network, the block one subscriber usually holds.
/// </summary>
/// <remarks>
/// The framework's window limiters read the real clock and <see cref="PartitionedRateLimiter.Create{TResource, TPartitionKey}"/>
/// keeps a partition until it has been idle on that clock, so neither follows a <see cref="TimeProvider"/> nor has a
/// memory bound. This one keeps a counter per client in one table of at most <see cref="MaxClients"/> entries; while
/// the table is full, a client not in it counts in one of <see cref="OverflowCounters"/> shared counters chosen by its
/// network (IPv4 /24, IPv6 /48), each with the same allowance: a full table still limits, and the memory stays bounded.
/// </remarks>
internal sealed class NewSessionLimiter : PartitionedRateLimiter<HttpContext>
{
    /// <summary>The most clients tracked at once (about 50 bytes each).</summary>
    public const int DefaultMaxClients = 100_000;

    /// <summary>The shared counters of the clients that find the table full.</summary>
    public const int OverflowCounters = 1_024;

    private static readonly RateLimitLease Acquired = new Lease(null);

    private readonly int _limit;
    private readonly TimeSpan _window;
    private readonly TimeProvider _time;
    private readonly object _lock = new();
    private readonly Dictionary<ClientKey, Window> _clients = [];
    private readonly Window[] _overflow = new Window[OverflowCounters];
    private long _lastSweep;
    private long _refused;
    private long _allowed;
    private bool _tableFullSaid;

    public NewSessionLimiter(int limit, TimeSpan window, TimeProvider timeProvider, int maxClients = DefaultMaxClients)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(window, TimeSpan.Zero);
        _limit = limit;
        _window = window;
        _time = timeProvider;
        MaxClients = maxClients;
        _lastSweep = timeProvider.GetTimestamp();
    }

    /// <summary>The most clients tracked at once.</summary>
    public int MaxClients { get; }

    /// <summary>Clients tracked now (for tests).</summary>
    public int TrackedClients
    {
        get
        {
            lock (_lock)
            {
                return _clients.Count;
            }
        }
    }

    /// <summary>What <see cref="TryAcquire"/> decided, with what is worth a log line.</summary>
    public enum Decision
    {
        /// <summary>Within the client's allowance.</summary>
        Allowed,

        /// <summary>Allowed, counted in a shared overflow counter: the table is full (said once per window).</summary>
        AllowedTableFull,

        /// <summary>Refused: the client used up its allowance for this window.</summary>
        Refused,

        /// <summary>Refused, for the first time in the client's window.</summary>
        FirstRefusal,
    }

    /// <summary>
    /// Takes one new session from the client's allowance. When it is refused, <paramref name="retryAfter"/> is the time
    /// until the client's window ends.
    /// </summary>
    public Decision TryAcquire(HttpContext context, out TimeSpan retryAfter)
    {
        retryAfter = TimeSpan.Zero;
        var key = ClientKey.Of(context.Connection.RemoteIpAddress);
        var now = _time.GetTimestamp();
        lock (_lock)
        {
            SweepIfDue(now);
            ref var window = ref CollectionsMarshal.GetValueRefOrNullRef(_clients, key);
            if (Unsafe.IsNullRef(ref window))
            {
                if (_clients.Count < MaxClients)
                {
                    _allowed++;
                    _clients[key] = new Window(now, 1);
                    return Decision.Allowed;
                }

                // The table is full: the client shares a counter with the others of its network that find it so.
                var decision = Count(ref _overflow[key.OverflowCounter()], now, out retryAfter);
                if (decision == Decision.Allowed && !_tableFullSaid)
                {
                    _tableFullSaid = true;
                    return Decision.AllowedTableFull;
                }

                return decision;
            }

            return Count(ref window, now, out retryAfter);
        }
    }

    /// <summary>Counts one new session in <paramref name="window"/> (a client's or an overflow counter).</summary>
    private Decision Count(ref Window window, long now, out TimeSpan retryAfter)
    {
        retryAfter = TimeSpan.Zero;
        var elapsed = _time.GetElapsedTime(window.Start, now);
        if (window.Count == 0 || elapsed >= _window)
        {
            window = new Window(now, 1);
            _allowed++;
            return Decision.Allowed;
        }

        if (window.Count < _limit)
        {
            window.Count++;
            _allowed++;
            return Decision.Allowed;
        }

        _refused++;
        retryAfter = _window - elapsed;
        var firstRefusal = !window.Refused;
        window.Refused = true;
        return firstRefusal ? Decision.FirstRefusal : Decision.Refused;
    }

    /// <summary>
    /// Whether <paramref name="address"/> is loopback or private (where a reverse proxy usually is): IPv4 127/8, 10/8,
    /// 172.16/12, 192.168/16, 169.254/16 and 100.64/10, IPv6 ::1, fc00::/7, fe80::/10 and fec0::/10, and the IPv4-mapped
    /// forms; no address (a Unix socket, a test server) counts as such.
    /// </summary>
    public static bool IsLoopbackOrPrivate(IPAddress? address)
    {
        if (address is null)
        {
            return true;
        }

        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            Span<byte> b = stackalloc byte[4];
            address.TryWriteBytes(b, out _);
            return b[0] == 127 || b[0] == 10 ||
                (b[0] == 172 && (b[1] & 0xF0) == 16) ||
                (b[0] == 192 && b[1] == 168) ||
                (b[0] == 169 && b[1] == 254) ||
                (b[0] == 100 && (b[1] & 0xC0) == 64);
        }

        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            Span<byte> b = stackalloc byte[16];
            address.TryWriteBytes(b, out _);
            return IPAddress.IsLoopback(address) || (b[0] & 0xFE) == 0xFC || address.IsIPv6LinkLocal || address.IsIPv6SiteLocal;
        }

        return false;
    }

    /// <summary>How a client is named in logs: its address, or its /64 network for IPv6.</summary>
    public static string ClientName(IPAddress? address) => ClientKey.Of(address).ToString();

    /// <inheritdoc/>
    public override RateLimiterStatistics? GetStatistics(HttpContext resource)
    {
        lock (_lock)
        {
            var key = ClientKey.Of(resource.Connection.RemoteIpAddress);
            var available = _clients.TryGetValue(key, out var window) && _time.GetElapsedTime(window.Start) < _window ? _limit - window.Count : _limit;
            return new RateLimiterStatistics { CurrentAvailablePermits = available, TotalFailedLeases = _refused, TotalSuccessfulLeases = _allowed };
        }
    }

    /// <inheritdoc/>
    protected override RateLimitLease AttemptAcquireCore(HttpContext resource, int permitCount)
    {
        if (permitCount != 1)
        {
            throw new ArgumentOutOfRangeException(nameof(permitCount), permitCount, "One new session is one permit.");
        }

        return TryAcquire(resource, out var retryAfter) is Decision.Allowed or Decision.AllowedTableFull ? Acquired : new Lease(retryAfter);
    }

    /// <inheritdoc/>
    protected override ValueTask<RateLimitLease> AcquireAsyncCore(HttpContext resource, int permitCount, CancellationToken cancellationToken) =>
        ValueTask.FromResult(AttemptAcquireCore(resource, permitCount));

    // Once per window, drop the clients whose window has ended: they are as good as absent.
    private void SweepIfDue(long now)
    {
        if (_time.GetElapsedTime(_lastSweep, now) < _window)
        {
            return;
        }

        _lastSweep = now;
        _tableFullSaid = false;
        foreach (var (key, window) in _clients)
        {
            if (_time.GetElapsedTime(window.Start, now) >= _window)
            {
                _clients.Remove(key);
            }
        }
    }

    private struct Window(long start, int count)
    {
        public long Start = start;
        public int Count = count;
        public bool Refused;
    }

    /// <summary>An IPv4 address, or the /64 network of an IPv6 address; <see langword="null"/> (no address: a test server, a Unix socket) is one client.</summary>
    private readonly record struct ClientKey(AddressFamily Family, ulong Value)
    {
        public static ClientKey Of(IPAddress? address)
        {
            if (address is null)
            {
                return default;
            }

            if (address.IsIPv4MappedToIPv6)
            {
                address = address.MapToIPv4();
            }

            Span<byte> bytes = stackalloc byte[16];
            if (address.AddressFamily == AddressFamily.InterNetwork)
            {
                address.TryWriteBytes(bytes, out _);
                return new ClientKey(AddressFamily.InterNetwork, BinaryPrimitives.ReadUInt32BigEndian(bytes));
            }

            address.TryWriteBytes(bytes, out _);
            return new ClientKey(AddressFamily.InterNetworkV6, BinaryPrimitives.ReadUInt64BigEndian(bytes));
        }

        /// <summary>
        /// The overflow counter of the client's network (IPv4 /24, IPv6 /48: one block a flood can hold many clients
        /// of); the hash is seeded per process, so which networks share a counter cannot be chosen from outside.
        /// </summary>
        public int OverflowCounter()
        {
            var network = Family == AddressFamily.InterNetworkV6 ? Value >> 16 : Value >> 8;
            return (int)((uint)HashCode.Combine(Family, network) % OverflowCounters);
        }

        public override string ToString()
        {
            switch (Family)
            {
                case AddressFamily.InterNetwork:
                    var v4 = new byte[4];
                    BinaryPrimitives.WriteUInt32BigEndian(v4, (uint)Value);
                    return new IPAddress(v4).ToString();
                case AddressFamily.InterNetworkV6:
                    var bytes = new byte[16];
                    BinaryPrimitives.WriteUInt64BigEndian(bytes, Value);
                    return new IPAddress(bytes) + "/64";
                default:
                    return "(no address)";
            }
        }
    }

    private sealed class Lease(TimeSpan? retryAfter) : RateLimitLease
    {
        public override bool IsAcquired => retryAfter is null;

        public override IEnumerable<string> MetadataNames => retryAfter is null ? [] : [MetadataName.RetryAfter.Name];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            metadata = retryAfter;
            return retryAfter is not null && metadataName == MetadataName.RetryAfter.Name;
        }
    }
}
