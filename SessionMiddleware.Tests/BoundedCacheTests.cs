using SessionMiddleware.Concurrency;

namespace SessionMiddleware.Tests;

/// <summary>
/// The bound of the per-process caches of unprotected cookies and tickets (<see cref="BoundedCache{TKey, TValue}"/>): full,
/// they start over with the newest entry; replacing an entry takes no room.
/// </summary>
public sealed class BoundedCacheTests
{
    [Test]
    public void Full_ItStartsOverWithTheNewestEntry()
    {
        var cache = new BoundedCache<int, string>(3);
        cache.Set(1, "a");
        cache.Set(2, "b");
        cache.Set(3, "c");
        cache.Set(4, "d");

        Assert.Multiple(() =>
        {
            Assert.That(cache.Count, Is.EqualTo(1));
            Assert.That(cache.TryGetValue(4, out var newest) ? newest : null, Is.EqualTo("d"));
            Assert.That(cache.TryGetValue(1, out _), Is.False);
        });
    }

    [Test]
    public void ReplacingAnEntry_TakesNoRoom()
    {
        var cache = new BoundedCache<int, string>(2);
        cache.Set(1, "a");
        for (var i = 0; i < 10; i++)
        {
            cache.Set(2, "b" + i);
        }

        Assert.Multiple(() =>
        {
            Assert.That(cache.Count, Is.EqualTo(2), "ten replacements of one key are one entry");
            Assert.That(cache.TryGetValue(1, out var first) ? first : null, Is.EqualTo("a"));
            Assert.That(cache.TryGetValue(2, out var second) ? second : null, Is.EqualTo("b9"));
        });
    }

    [Test]
    public async Task ManyThreadsAdding_NeverGrowItPastItsCapacityAndTheWritersAtOnce()
    {
        const int capacity = 1000;
        var cache = new BoundedCache<int, int>(capacity);
        var maxSeen = 0;
        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(() =>
        {
            for (var i = 0; i < 50_000; i++)
            {
                cache.Set(w * 1_000_000 + i, i);
                if (i % 500 == 0)
                {
                    var count = cache.Count;
                    int seen;
                    while ((seen = Volatile.Read(ref maxSeen)) < count && Interlocked.CompareExchange(ref maxSeen, count, seen) != seen)
                    {
                    }
                }
            }
        }));
        await Task.WhenAll(writers);

        Assert.That(maxSeen, Is.InRange(1, capacity + 4));
    }

    [Test]
    public void ACapacityOfZero_IsRefused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new BoundedCache<int, int>(0));
}
