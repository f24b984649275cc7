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
/// memory bound. This one keeps a counter per client in one table of at most <see cref="MaxClients"/> entries; a client
/// beyond that is not limited until the table has room again (a distributed flood that large is beyond what a
/// per-client limit can stop; the memory stays bounded).
/// </remarks>
internal sealed class NewSessionLimiter : PartitionedRateLimiter<HttpContext>
{
    /// <summary>The most clients tracked at once (about 50 bytes each).</summary>
    public const int DefaultMaxClients = 100_000;

    private static readonly RateLimitLease Acquired = new Lease(null);

    private readonly int _limit;
    private readonly TimeSpan _window;
    private readonly TimeProvider _time;
    private readonly object _lock = new();
    private readonly Dictionary<ClientKey, Window> _clients = [];
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

        /// <summary>Allowed untracked: the table is full (said once per window).</summary>
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
                _allowed++;
                if (_clients.Count >= MaxClients)
                {
                    // Not tracked, so not limited: see the remarks.
                    var first = !_tableFullSaid;
                    _tableFullSaid = true;
                    return first ? Decision.AllowedTableFull : Decision.Allowed;
                }

                _clients[key] = new Window(now, 1);
                return Decision.Allowed;
            }

            var elapsed = _time.GetElapsedTime(window.Start, now);
            if (elapsed >= _window)
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
