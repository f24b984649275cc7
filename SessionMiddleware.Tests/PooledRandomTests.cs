using SessionMiddleware.Ids;

namespace SessionMiddleware.Tests;

/// <summary>
/// The per-thread pool session IDs and ticket references draw their random bytes from (<see cref="PooledRandom"/>): every
/// byte is handed out once, across refills, and the pool keeps nothing it handed out.
/// </summary>
public sealed class PooledRandomTests
{
    [Test]
    public void ThousandsOfDraws_AcrossManyRefills_AreAllDifferent()
    {
        // 38 does not divide the pool's 1,024 bytes: draws straddle the refills.
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < 20_000; i++)
        {
            var bytes = new byte[38];
            PooledRandom.Fill(bytes);
            Assert.That(seen.Add(Convert.ToHexString(bytes)), Is.True, $"draw {i} repeated an earlier one");
        }
    }

    [Test]
    public void WhatWasHandedOut_IsZeroedInThePool()
    {
        var first = new byte[32];
        var second = new byte[32];
        PooledRandom.Fill(first);
        PooledRandom.Fill(second);

        var pool = PooledRandom.PoolOfThisThread.ToArray();
        var notYetIssued = pool.AsSpan(PooledRandom.NextOfThisThread).ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(first, Is.Not.EqualTo(new byte[32]));
            Assert.That(pool.AsSpan().IndexOf(first.AsSpan(0, 16)), Is.EqualTo(-1), "an issued ID stays in the pool");
            Assert.That(pool.AsSpan().IndexOf(second.AsSpan(0, 16)), Is.EqualTo(-1), "an issued ID stays in the pool");
            Assert.That(pool.AsSpan(0, PooledRandom.NextOfThisThread).ContainsAnyExcept((byte)0), Is.False, "every byte handed out is zeroed");
            Assert.That(notYetIssued.Count(b => b == 0), Is.LessThanOrEqualTo(2 + (notYetIssued.Length / 16)), "the bytes not yet issued are random, not zeros");
        });
    }

    [Test]
    public void ARequestLargerThanThePool_GoesToTheGenerator()
    {
        var big = new byte[PooledRandom.PoolBytes + 1];
        PooledRandom.Fill(big);
        var again = new byte[big.Length];
        PooledRandom.Fill(again);

        Assert.That(big, Is.Not.EqualTo(again));
        Assert.That(big.Count(b => b == 0), Is.LessThan(big.Length / 4));
    }
}
