using System.Security.Cryptography;
using SessionMiddleware.Ids;

namespace SessionMiddleware.Tests;

/// <summary>
/// The secret ID and its key: keys sort in the order their IDs were issued (so a store appends new rows), keep the
/// secret's SHA-256 in the rest, and a 32-byte secret ID issued before the time prefix keeps its whole SHA-256 as key.
/// </summary>
public sealed class SessionIdsTests
{
    private static readonly DateTimeOffset At = new(2026, 12, 7, 18, 0, 0, TimeSpan.Zero);

    [Test]
    public void KeysOfIdsIssuedLater_SortAfter_WhateverTheirRandomBytes()
    {
        var keys = Enumerable.Range(0, 2000).Select(i => SessionIds.ComputeKey(SessionIds.NewSecretId(At.AddMilliseconds(i)))).ToList();

        var sorted = keys.Order(ByteOrder.Instance).ToList();

        Assert.That(sorted, Is.EqualTo(keys), "keys compare (as the stores' primary keys do: bytewise) in issue order");
    }

    [Test]
    public void TheKey_IsTheIssueTime_ThenTheSecretsSha256()
    {
        var secret = SessionIds.NewSecretId(At);

        var key = SessionIds.ComputeKey(secret);

        Assert.Multiple(() =>
        {
            Assert.That(secret, Has.Length.EqualTo(38), "6 bytes of time and 32 random bytes");
            Assert.That(key, Has.Length.EqualTo(32));
            Assert.That(Convert.ToHexStringLower(key.AsSpan(0, 6)), Is.EqualTo(At.ToUnixTimeMilliseconds().ToString("x12", System.Globalization.CultureInfo.InvariantCulture)));
            Assert.That(key.AsSpan(6).ToArray(), Is.EqualTo(SHA256.HashData(secret).AsSpan(0, 26).ToArray()));
            Assert.That(key.AsSpan(6).ToArray(), Is.Not.EqualTo(secret.AsSpan(6, 26).ToArray()), "the key does not hold the secret's random bytes");
        });
    }

    [Test]
    public void IdsIssuedInOneMillisecond_DifferInTheirRandomBytes_AndKeys()
    {
        var secrets = Enumerable.Range(0, 100).Select(_ => SessionIds.NewSecretId(At)).ToList();

        Assert.Multiple(() =>
        {
            Assert.That(secrets.Select(Convert.ToHexString).Distinct().Count(), Is.EqualTo(100));
            Assert.That(secrets.Select(s => Convert.ToHexString(SessionIds.ComputeKey(s))).Distinct().Count(), Is.EqualTo(100));
        });
    }

    [Test]
    public void ASecretIdIssuedBeforeTheTimePrefix_KeepsItsWholeSha256AsKey()
    {
        var old = RandomNumberGenerator.GetBytes(32);

        Assert.Multiple(() =>
        {
            Assert.That(SessionIds.ComputeKey(old), Is.EqualTo(SHA256.HashData(old)));
            Assert.That(SessionIds.IsSecretIdLength(32) && SessionIds.IsSecretIdLength(38), "both are read from cookies");
            Assert.That(SessionIds.IsSecretIdLength(16) || SessionIds.IsSecretIdLength(37) || SessionIds.IsSecretIdLength(39), Is.False);
        });
    }

    [Test]
    public void AClockBefore1970_IssuesIdsWithTimeZero_AndTheLastDateFits()
    {
        var before1970 = SessionIds.ComputeKey(SessionIds.NewSecretId(new DateTimeOffset(1969, 1, 1, 0, 0, 0, TimeSpan.Zero)));
        var max = SessionIds.ComputeKey(SessionIds.NewSecretId(DateTimeOffset.MaxValue));

        Assert.Multiple(() =>
        {
            Assert.That(before1970.AsSpan(0, 6).ToArray(), Is.EqualTo(new byte[6]), "clamped to the epoch");
            Assert.That(Convert.ToHexStringLower(max.AsSpan(0, 6)), Is.EqualTo(DateTimeOffset.MaxValue.ToUnixTimeMilliseconds().ToString("x12", System.Globalization.CultureInfo.InvariantCulture)),
                "the last DateTimeOffset fits in 6 bytes");
        });
    }

    // Keys issued together share their first bytes (the time): anything that buckets or stripes keys must hash their
    // SHA-256 bytes, or every session of a busy second lands in one bucket (a row cache lookup walks them all) or one
    // commit lock (every commit of the process waits for the others).
    [Test]
    public void KeysIssuedInOneMillisecond_SpreadOverTheCommitLockStripes_AndTheRowCachesBuckets()
    {
        var keys = Enumerable.Range(0, 2000).Select(_ => SessionIds.ComputeKey(SessionIds.NewSecretId(At))).ToList();

        var stripes = keys.Select(Concurrency.CommitLocks.StripeOf).Distinct().Count();
        var hashes = keys.Select(Ids.SessionKeyComparer.Instance.GetHashCode).Distinct().Count();

        Assert.Multiple(() =>
        {
            Assert.That(stripes, Is.GreaterThan(800), "2,000 keys over 1,024 stripes: about 880 stripes used when spread evenly");
            Assert.That(hashes, Is.GreaterThan(1990), "2,000 keys: as many hash codes, but for a chance collision");
        });
    }

    private sealed class ByteOrder : IComparer<byte[]>
    {
        public static readonly ByteOrder Instance = new();

        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }
}
