using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;

namespace SessionMiddleware.Concurrency;

/// <summary>
/// A concurrent map bounded the cheap way: once it holds <c>capacity</c> entries it starts over empty. What a request
/// finds here it could always recompute (an unprotected cookie, a deserialized ticket), so dropping everything at once is
/// safe, and the bound costs one interlocked increment per new entry.
/// </summary>
/// <remarks>
/// The size is counted as entries are added, never read from <see cref="ConcurrentDictionary{TKey, TValue}.Count"/>:
/// that takes every one of the dictionary's locks, and with a sign-in per request (each adding an entry) it was 13% of
/// the server's CPU. It starts over with a fresh dictionary rather than <see cref="ConcurrentDictionary{TKey, TValue}.Clear"/>
/// (which takes every lock too); an entry that stays is always counted, so the bound holds up to the writers adding at
/// that instant.
/// </remarks>
internal sealed class BoundedCache<TKey, TValue>
    where TKey : notnull
{
    private readonly IEqualityComparer<TKey>? _comparer;
    private readonly int _capacity;
    private readonly Lock _startOverLock = new();
    private ConcurrentDictionary<TKey, TValue> _entries;
    private int _added;

    public BoundedCache(int capacity, IEqualityComparer<TKey>? comparer = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        _capacity = capacity;
        _comparer = comparer;
        _entries = new ConcurrentDictionary<TKey, TValue>(comparer);
    }

    /// <summary>How many entries are kept now (tests and diagnostics; takes every lock of the dictionary).</summary>
    public int Count => Volatile.Read(ref _entries).Count;

    public bool TryGetValue(TKey key, [MaybeNullWhen(false)] out TValue value) => Volatile.Read(ref _entries).TryGetValue(key, out value);

    /// <summary>Adds or replaces the entry of <paramref name="key"/>; when the cache is full, everything else is dropped first.</summary>
    public void Set(TKey key, TValue value)
    {
        var entries = Volatile.Read(ref _entries);
        if (entries.TryAdd(key, value))
        {
            if (Interlocked.Increment(ref _added) > _capacity)
            {
                StartOver(key, value);
            }

            return;
        }

        entries[key] = value;
    }

    private void StartOver(TKey key, TValue value)
    {
        lock (_startOverLock)
        {
            if (Volatile.Read(ref _added) <= _capacity)
            {
                return;   // another writer just started over
            }

            // A fresh dictionary, counted from before it is published: every entry added to it is counted. A writer that
            // still adds to the old one loses its entry and is counted anyway, so a round can end a little early.
            var fresh = new ConcurrentDictionary<TKey, TValue>(_comparer);
            fresh[key] = value;
            Interlocked.Exchange(ref _added, 1);
            Volatile.Write(ref _entries, fresh);
        }
    }
}
