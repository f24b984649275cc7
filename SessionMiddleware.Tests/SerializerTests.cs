using SessionMiddleware.Session;

namespace SessionMiddleware.Tests;

/// <summary>The versioned binary format: round trips, and bad bytes are reported rather than thrown.</summary>
public sealed class SerializerTests
{
    [Test]
    public void Serialize_WithTickets_WritesFormat2_KeepsThemApartFromTheData_AndWithoutTicketsStaysFormat1()
    {
        var entries = new Dictionary<string, byte[]>(StringComparer.Ordinal) { ["cart"] = [1, 2] };
        var size = SessionSerializer.HeaderSize(1) + SessionSerializer.EntrySize("cart", 2);
        var ticket = new SessionTicket("ab12", DateTimeOffset.FromUnixTimeSeconds(1_800_000_000), [9, 8, 7]);
        var tickets = new Dictionary<string, byte[]>(StringComparer.Ordinal) { ["Cookies"] = ticket.Encode() };

        var withTickets = SessionSerializer.Serialize(entries, size, tickets);
        var ok = SessionSerializer.TryDeserialize(withTickets, out var read, out var readSize, out var readTickets, out var error);
        var without = SessionSerializer.Serialize(entries, size, new Dictionary<string, byte[]>());

        Assert.Multiple(() =>
        {
            Assert.That(ok, Is.True, error);
            Assert.That(withTickets[0], Is.EqualTo(2));
            Assert.That(read, Is.EquivalentTo(entries), "the tickets are not among the data");
            Assert.That(readSize, Is.EqualTo(size), "the data's size, which MaxSessionBytes limits, leaves the tickets out");
            Assert.That(SessionTicket.Decode(readTickets["Cookies"]), Is.EqualTo(ticket).Using<SessionTicket>((a, b) =>
                a.Id == b.Id && a.KeepUntil == b.KeepUntil && a.ProtectedTicket.SequenceEqual(b.ProtectedTicket)));
            Assert.That(without[0], Is.EqualTo(1), "format 1 while there is no ticket, which earlier versions read");
        });
    }

    [Test]
    public void Serialize_ThenDeserialize_RoundTrips()
    {
        var entries = new Dictionary<string, byte[]>(StringComparer.Ordinal)
        {
            ["a"] = [1, 2, 3],
            ["ключ"] = [],
            ["big"] = new byte[70_000],
        };
        var size = SessionSerializer.HeaderSize(entries.Count) + entries.Sum(e => SessionSerializer.EntrySize(e.Key, e.Value.Length));

        var bytes = SessionSerializer.Serialize(entries, size);
        var ok = SessionSerializer.TryDeserialize(bytes, out var read, out var readSize, out var error);

        Assert.Multiple(() =>
        {
            Assert.That(ok, Is.True, error);
            Assert.That(bytes, Has.Length.EqualTo(size));
            Assert.That(readSize, Is.EqualTo(size));
            Assert.That(read, Is.EquivalentTo(entries));
        });
    }

    [TestCase(new byte[] { 3, 0 }, "unknown format version 3")]
    [TestCase(new byte[] { 2, 0 }, "corrupt entry count")]
    [TestCase(new byte[] { 1 }, "corrupt entry count")]
    [TestCase(new byte[] { 1, 1, 5, (byte)'a' }, "corrupt key")]
    [TestCase(new byte[] { 1, 1, 1, (byte)'a', 9, 1 }, "corrupt value")]
    [TestCase(new byte[] { 1, 0, 7 }, "trailing bytes")]
    [TestCase(new byte[] { 1, 1, 1, 0xFF, 0 }, "key is not UTF-8")]
    [TestCase(new byte[] { 1, 2, 1, (byte)'a', 0, 1, (byte)'a', 0 }, "duplicate key")]
    [TestCase(new byte[] { 1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF }, "corrupt entry count")]
    public void Deserialize_BadBytes_ReportsWhy(byte[] data, string expected)
    {
        var ok = SessionSerializer.TryDeserialize(data, out var entries, out _, out var error);

        Assert.Multiple(() =>
        {
            Assert.That(ok, Is.False);
            Assert.That(error, Is.EqualTo(expected));
            Assert.That(entries, Is.Empty);
        });
    }

    [Test]
    public void Deserialize_RandomBytes_NeverThrows()
    {
        var random = new Random(1234);
        for (var i = 0; i < 20_000; i++)
        {
            var data = new byte[random.Next(0, 64)];
            random.NextBytes(data);
            if (data.Length > 0 && random.Next(2) == 0)
            {
                data[0] = SessionSerializer.FormatVersion;
            }

            Assert.DoesNotThrow(() => SessionSerializer.TryDeserialize(data, out _, out _, out _));
        }
    }
}
