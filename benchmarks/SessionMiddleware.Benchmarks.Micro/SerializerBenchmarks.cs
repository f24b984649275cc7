using System.Text;
using BenchmarkDotNet.Attributes;
using SessionMiddleware.Session;

namespace SessionMiddleware.Benchmarks.Micro;

/// <summary>The session data format: serialize and read back a small (the benchmark's one key) and a larger session.</summary>
[MemoryDiagnoser]
public class SerializerBenchmarks
{
    private Dictionary<string, byte[]> _entries = [];
    private int _size;
    private byte[] _bytes = [];

    /// <summary>Entries in the session: 1 (the HTTP benchmark's "k") or 20 of 100 bytes each.</summary>
    [Params(1, 20)]
    public int Entries { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _entries = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        for (var i = 0; i < Entries; i++)
        {
            _entries[i == 0 ? "k" : $"key-{i:D2}"] = Entries == 1 ? Encoding.UTF8.GetBytes("value-of-k-0123456789abcdef") : new byte[100];
        }

        _size = SessionSerializer.HeaderSize(_entries.Count) + _entries.Sum(e => SessionSerializer.EntrySize(e.Key, e.Value.Length));
        _bytes = SessionSerializer.Serialize(_entries, _size);
    }

    [Benchmark]
    public byte[] Serialize() => SessionSerializer.Serialize(_entries, _size);

    [Benchmark]
    public int Deserialize()
    {
        SessionSerializer.TryDeserialize(_bytes, out var entries, out _, out _);
        return entries.Count;
    }
}
