using Microsoft.AspNetCore.DataProtection;
using SessionMiddleware.Session;

namespace SessionMiddleware.Tests;

/// <summary>
/// A session's data and change set on their own, without a request or a store: what set, remove and clear record,
/// how the change set is applied onto a concurrent commit's data, and the size limit.
/// </summary>
public sealed class SessionDataTests
{
    private const int Limit = 1024;

    private static readonly SessionDataProtector InClear = new(new EphemeralDataProtectionProvider(), seals: false);

    private static byte[] Bytes(params byte[] values) => values;

    private static Dictionary<string, byte[]> Values(params (string Key, byte[] Value)[] entries) =>
        entries.ToDictionary(e => e.Key, e => e.Value, StringComparer.Ordinal);

    private static SessionData Stored(params (string Key, byte[] Value)[] entries)
    {
        var values = Values(entries);
        var bytes = SessionSerializer.Serialize(values, SizeOf(values));
        var data = SessionData.Read(bytes, InClear, Limit, out _, out var error);
        Assert.That(error, Is.Null);
        return data;
    }

    private static int SizeOf(Dictionary<string, byte[]> values) =>
        SessionSerializer.HeaderSize(values.Count) + values.Sum(v => SessionSerializer.EntrySize(v.Key, v.Value.Length));

    private static Dictionary<string, byte[]> Snapshot(SessionData data) => data.Values.ToDictionary(v => v.Key, v => v.Value, StringComparer.Ordinal);

    [Test]
    public void Set_CopiesTheValueInAndOut_AndMarksTheDataModified()
    {
        var data = new SessionData(Limit);
        var value = Bytes(1, 2);
        data.Set("a", value);
        value[0] = 9;
        data.TryGetValue("a", out var read);
        read![1] = 9;

        Assert.Multiple(() =>
        {
            Assert.That(data.IsModified, Is.True);
            Assert.That(data.TryGetValue("a", out var again), Is.True);
            Assert.That(again, Is.EqualTo(Bytes(1, 2)), "neither the caller's array nor the returned copy reaches the stored value");
            Assert.That(data.Size, Is.EqualTo(SizeOf(Values(("a", Bytes(1, 2))))), "the size follows the serialized form");
        });
    }

    [Test]
    public void RemoveOrClear_OfNothing_DoesNotModify_ButIsStillRecorded()
    {
        var data = Stored(("kept", Bytes(1)));
        data.Remove("missing");
        var empty = new SessionData(Limit);
        empty.Clear();

        // A concurrent commit added "missing": this request's removal still applies to it.
        var rebased = data.TryRebase(Values(("kept", Bytes(2)), ("missing", Bytes(3))), [], out _);

        Assert.Multiple(() =>
        {
            Assert.That(empty.IsModified, Is.False, "clearing empty data needs no write");
            Assert.That(rebased, Is.True);
            Assert.That(Snapshot(data), Is.EquivalentTo(Values(("kept", Bytes(2)))), "the removal is part of the change set");
        });
    }

    [Test]
    public void TryRebase_AppliesSetsAndRemovalsOntoTheNewerData_AndKeepsWhatThisRequestDidNotTouch()
    {
        var data = Stored(("a", Bytes(1)), ("b", Bytes(1)), ("c", Bytes(1)));
        data.Set("a", Bytes(10));
        data.Remove("b");

        var rebased = data.TryRebase(Values(("a", Bytes(2)), ("b", Bytes(2)), ("c", Bytes(2)), ("d", Bytes(2))), [], out var size);

        Assert.Multiple(() =>
        {
            Assert.That(rebased, Is.True);
            Assert.That(Snapshot(data), Is.EquivalentTo(Values(("a", Bytes(10)), ("c", Bytes(2)), ("d", Bytes(2)))));
            Assert.That(size, Is.EqualTo(data.Size));
            Assert.That(data.Size, Is.EqualTo(SizeOf(Snapshot(data))));
            Assert.That(data.IsModified, Is.True, "still to be written");
        });
    }

    [Test]
    public void TryRebase_AfterClear_DropsTheNewerData_AndKeepsOnlyWhatWasSetSince()
    {
        var data = Stored(("a", Bytes(1)));
        data.Clear();
        data.Set("b", Bytes(5));

        data.TryRebase(Values(("a", Bytes(2)), ("z", Bytes(2))), [], out _);

        Assert.That(Snapshot(data), Is.EquivalentTo(Values(("b", Bytes(5)))));
    }

    [Test]
    public void ChangesCommitted_StartsANewChangeSet_SoALaterRebaseKeepsTheNewerValues()
    {
        var data = Stored(("a", Bytes(1)));
        data.Set("a", Bytes(10));
        data.ChangesCommitted();

        data.TryRebase(Values(("a", Bytes(2))), [], out _);

        Assert.Multiple(() =>
        {
            Assert.That(data.IsModified, Is.False);
            Assert.That(Snapshot(data), Is.EquivalentTo(Values(("a", Bytes(2)))), "a committed change is not applied again");
        });
    }

    [Test]
    public void Set_OverTheLimit_Throws_AndStoresNothing()
    {
        var data = new SessionData(64);
        data.Set("a", new byte[10]);
        var sizeBefore = data.Size;

        var error = Assert.Throws<InvalidOperationException>(() => data.Set("b", new byte[60]));

        Assert.Multiple(() =>
        {
            Assert.That(error!.Message, Does.Contain("over the limit of 64 bytes").And.Contain("MaxSessionBytes"));
            Assert.That(data.Keys, Is.EquivalentTo(new[] { "a" }));
            Assert.That(data.Size, Is.EqualTo(sizeBefore));
        });
    }

    [Test]
    public void Set_UpToTheLimitExactly_IsAllowed()
    {
        var data = new SessionData(SizeOf(Values(("a", new byte[50]))));

        Assert.DoesNotThrow(() => data.Set("a", new byte[50]));
        Assert.That(data.Size, Is.EqualTo(data.MaxBytes));
    }

    [Test]
    public void TryRebase_OverTheLimit_ReturnsFalse_AndChangesNothing()
    {
        var data = new SessionData(64);
        data.Set("mine", new byte[30]);
        var before = Snapshot(data);

        var rebased = data.TryRebase(Values(("theirs", new byte[30])), [], out var size);

        Assert.Multiple(() =>
        {
            Assert.That(rebased, Is.False, "each request stayed under the limit, the merge does not");
            Assert.That(size, Is.GreaterThan(64));
            Assert.That(Snapshot(data), Is.EquivalentTo(before));
            Assert.That(data.IsModified, Is.True, "the change set is kept");
        });
    }

    [Test]
    public void UnreadableBytes_AreKeptUntilTheDataChanges_AndByARebaseOntoUnreadableData()
    {
        byte[] garbage = [0xFF, 1, 2, 3];
        var data = SessionData.Read(garbage, InClear, Limit, out var tickets, out var error);
        var keptBefore = data.UnreadableBytes;
        data.Set("a", Bytes(1));
        data.ChangesCommitted();
        var keptAfterCommit = data.UnreadableBytes;
        data.TryRebase(null, garbage, out _);

        Assert.Multiple(() =>
        {
            Assert.That(error, Is.Not.Null);
            Assert.That(tickets, Is.Empty);
            Assert.That(keptBefore, Is.SameAs(garbage));
            Assert.That(keptAfterCommit, Is.Null, "the app's write replaced them");
            Assert.That(data.UnreadableBytes, Is.SameAs(garbage), "a newer row that cannot be read is kept again");
        });
    }

    [Test]
    public void ForgetChanges_KeepsTheData_Reset_EmptiesIt()
    {
        var gone = Stored(("a", Bytes(1)));
        gone.Set("b", Bytes(2));
        gone.ForgetChanges();
        gone.TryRebase(Values(("c", Bytes(3))), [], out _);

        var abandoned = Stored(("a", Bytes(1)));
        abandoned.Set("b", Bytes(2));
        abandoned.Reset();

        Assert.Multiple(() =>
        {
            Assert.That(Snapshot(gone), Is.EquivalentTo(Values(("c", Bytes(3)))), "no change is left to apply");
            Assert.That(gone.IsModified, Is.False);
            Assert.That(abandoned.Count, Is.Zero);
            Assert.That(abandoned.Size, Is.EqualTo(SessionSerializer.EmptySize));
            Assert.That(abandoned.IsModified, Is.False);
        });
    }
}
