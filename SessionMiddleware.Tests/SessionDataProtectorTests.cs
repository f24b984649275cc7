using System.Text;
using Microsoft.AspNetCore.DataProtection;
using SessionMiddleware.Session;

namespace SessionMiddleware.Tests;

/// <summary>
/// Sealing a session's serialized data (<see cref="ServerSideSessionOptions.ProtectData"/>) on its own: what a sealed
/// blob looks like, that clear and sealed blobs are both read whatever the option, and a blob the key ring cannot open.
/// </summary>
public sealed class SessionDataProtectorTests
{
    private static byte[] Serialized(string key, string value)
    {
        var entries = new Dictionary<string, byte[]>(StringComparer.Ordinal) { [key] = Encoding.UTF8.GetBytes(value) };
        return SessionSerializer.Serialize(entries, SessionSerializer.HeaderSize(1) + SessionSerializer.EntrySize(key, entries[key].Length));
    }

    [Test]
    public void Seal_WhenOn_StartsWithTheSealedFormat_HidesKeyAndValue_AndReadsBack()
    {
        var keys = new EphemeralDataProtectionProvider();
        var sealer = new SessionDataProtector(keys, seals: true);
        var clear = Serialized("card-number", "4111-1111");

        var sealedBytes = sealer.Seal(clear);
        var readBySealer = sealer.TryRead(sealedBytes, out var entries, out var size, out _, out var error);
        var readWhenOff = new SessionDataProtector(keys, seals: false).TryRead(sealedBytes, out var entriesWhenOff, out _, out _, out _);

        Assert.Multiple(() =>
        {
            Assert.That(sealedBytes[0], Is.EqualTo(SessionDataProtector.SealedFormat));
            Assert.That(Contains(sealedBytes, "card-number") || Contains(sealedBytes, "4111"), Is.False);
            Assert.That(readBySealer, Is.True, error);
            Assert.That(Encoding.UTF8.GetString(entries["card-number"]), Is.EqualTo("4111-1111"));
            Assert.That(size, Is.EqualTo(clear.Length), "the size tracked against MaxSessionBytes is the clear one");
            Assert.That(readWhenOff, Is.True, "turned off, sealed rows still read");
            Assert.That(entriesWhenOff.Keys, Is.EqualTo(new[] { "card-number" }));
        });
    }

    [Test]
    public void Seal_WhenOff_ReturnsTheClearBytes_AndASealingProtectorReadsThem()
    {
        var keys = new EphemeralDataProtectionProvider();
        var clear = Serialized("a", "b");

        var stored = new SessionDataProtector(keys, seals: false).Seal(clear);
        var read = new SessionDataProtector(keys, seals: true).TryRead(stored, out var entries, out _, out _, out _);

        Assert.Multiple(() =>
        {
            Assert.That(stored, Is.SameAs(clear));
            Assert.That(read, Is.True, "clear rows stay readable once sealing is on");
            Assert.That(entries.Keys, Is.EqualTo(new[] { "a" }));
        });
    }

    [Test]
    public void SealedBlob_OfAnotherKeyRing_IsUnreadable_AndKeptAsStored()
    {
        var sealedBytes = new SessionDataProtector(new EphemeralDataProtectionProvider(), seals: true).Seal(Serialized("a", "b"));
        var otherRing = new SessionDataProtector(new EphemeralDataProtectionProvider(), seals: true);

        var data = SessionData.Read(sealedBytes, otherRing, 1024, out var tickets, out var error);

        Assert.Multiple(() =>
        {
            Assert.That(error, Does.Contain("key ring"));
            Assert.That(data.Count, Is.Zero);
            Assert.That(tickets, Is.Empty);
            Assert.That(data.UnreadableBytes, Is.SameAs(sealedBytes), "written back as they were, never replaced by a read");
        });
    }

    [Test]
    public void SealedBlob_Tampered_IsUnreadable()
    {
        var sealer = new SessionDataProtector(new EphemeralDataProtectionProvider(), seals: true);
        var sealedBytes = sealer.Seal(Serialized("a", "b"));
        sealedBytes[^1] ^= 1;

        Assert.That(sealer.TryRead(sealedBytes, out _, out _, out _, out var error), Is.False, error);
    }

    [Test]
    public void TheSameSealedBlob_IsUnprotectedOnce_AnotherWithTheSameBytes_Again()
    {
        // The SQLite row cache hands out the same array for a row at every load: opening it once is enough.
        var keys = new CountingProvider(new EphemeralDataProtectionProvider());
        var protector = new SessionDataProtector(keys, seals: true);
        var sealedBytes = protector.Seal(Serialized("a", "b"));

        var first = protector.TryRead(sealedBytes, out var entries, out _, out _, out _);
        var second = protector.TryRead(sealedBytes, out var again, out _, out _, out _);
        var afterSame = keys.Unprotects;
        var copy = protector.TryRead((byte[])sealedBytes.Clone(), out _, out _, out _, out _);

        Assert.Multiple(() =>
        {
            Assert.That(first && second && copy, Is.True);
            Assert.That(Encoding.UTF8.GetString(again["a"]), Is.EqualTo("b"));
            Assert.That(entries["a"], Is.Not.SameAs(again["a"]), "each read gets its own values");
            Assert.That(afterSame, Is.EqualTo(1));
            Assert.That(keys.Unprotects, Is.EqualTo(2), "another array is opened anew");
        });
    }

    /// <summary>Counts the unprotects of the protectors it creates.</summary>
    private sealed class CountingProvider(IDataProtectionProvider inner) : IDataProtectionProvider
    {
        public int Unprotects;

        public IDataProtector CreateProtector(string purpose) => new Counting(this, inner.CreateProtector(purpose));

        private sealed class Counting(CountingProvider owner, IDataProtector inner) : IDataProtector
        {
            public IDataProtector CreateProtector(string purpose) => new Counting(owner, inner.CreateProtector(purpose));

            public byte[] Protect(byte[] plaintext) => inner.Protect(plaintext);

            public byte[] Unprotect(byte[] protectedData)
            {
                Interlocked.Increment(ref owner.Unprotects);
                return inner.Unprotect(protectedData);
            }
        }
    }

    private static bool Contains(byte[] haystack, string needle) => haystack.AsSpan().IndexOf(Encoding.UTF8.GetBytes(needle)) >= 0;
}
