using System.Diagnostics.CodeAnalysis;

namespace SessionMiddleware.Session;

/// <summary>
/// A session's key/value data and the change set this request made to it: ASP.NET Core <see cref="Microsoft.AspNetCore.Http.ISession"/>
/// semantics (ordinal, case-sensitive keys; values copied in and out), the serialized size kept under a limit, and the
/// changes recorded so that they can be applied again onto newer stored data when a concurrent commit wrote first.
/// Knows no ID, store or request.
/// </summary>
internal sealed class SessionData
{
    private readonly int _maxBytes;
    private Dictionary<string, byte[]> _values;
    private int _size;

    // The change set since the last commit: a value, or null for a removal; _cleared when Clear was called first.
    private readonly Dictionary<string, byte[]?> _changes = new(StringComparer.Ordinal);
    private bool _cleared;

    // The stored bytes this library could not read (e.g. a newer format): written back as they are until the data changes.
    private byte[]? _unreadable;

    /// <summary>Empty data, limited to <paramref name="maxBytes"/> serialized.</summary>
    public SessionData(int maxBytes)
        : this(maxBytes, new Dictionary<string, byte[]>(StringComparer.Ordinal), SessionSerializer.EmptySize)
    {
    }

    private SessionData(int maxBytes, Dictionary<string, byte[]> values, int size)
    {
        _maxBytes = maxBytes;
        _values = values;
        _size = size;
    }

    /// <summary>
    /// The data of stored bytes (sealed or clear, opened by <paramref name="protector"/>), with their sign-in tickets
    /// (encoded, by scheme). Bytes that cannot be opened or read give empty data that keeps them as they were stored
    /// (<see cref="UnreadableBytes"/>) and a non-null <paramref name="error"/>.
    /// </summary>
    public static SessionData Read(byte[] stored, SessionDataProtector protector, int maxBytes, out Dictionary<string, byte[]> tickets, out string? error)
    {
        if (!protector.TryRead(stored, out var values, out var size, out tickets, out error))
        {
            return new SessionData(maxBytes) { _unreadable = stored };
        }

        return new SessionData(maxBytes, values, size);
    }

    /// <summary>True when the data changed since the last commit (a removal of a missing key or a clear of nothing does not count).</summary>
    public bool IsModified { get; private set; }

    /// <summary>The stored bytes that could not be read, kept until the data changes; otherwise <see langword="null"/>.</summary>
    public byte[]? UnreadableBytes => _unreadable;

    /// <summary>The most bytes the data may take serialized (<see cref="ServerSideSessionOptions.MaxSessionBytes"/>).</summary>
    public int MaxBytes => _maxBytes;

    /// <summary>The values by key, as serialized.</summary>
    public IReadOnlyDictionary<string, byte[]> Values => _values;

    /// <summary>The serialized size of <see cref="Values"/>.</summary>
    public int Size => _size;

    /// <summary>Number of entries.</summary>
    public int Count => _values.Count;

    /// <summary>The keys.</summary>
    public IEnumerable<string> Keys => _values.Keys;

    /// <summary>A copy of the value of <paramref name="key"/>.</summary>
    public bool TryGetValue(string key, [NotNullWhen(true)] out byte[]? value)
    {
        if (_values.TryGetValue(key, out var stored))
        {
            value = (byte[])stored.Clone();
            return true;
        }

        value = null;
        return false;
    }

    /// <summary>Sets a copy of <paramref name="value"/>; throws, storing nothing, when the data would outgrow the limit.</summary>
    public void Set(string key, byte[] value)
    {
        var newSize = SizeAfterSet(key, value.Length);
        if (newSize > _maxBytes)
        {
            throw new InvalidOperationException(
                $"Setting session key '{key}' would make the session {newSize} bytes, over the limit of {_maxBytes} bytes " +
                $"(ServerSideSessionOptions.{nameof(ServerSideSessionOptions.MaxSessionBytes)}). Nothing was stored.");
        }

        var copy = (byte[])value.Clone();
        _values[key] = copy;
        _size = newSize;
        _changes[key] = copy;
        IsModified = true;
    }

    /// <summary>Removes <paramref name="key"/>.</summary>
    public void Remove(string key)
    {
        // The removal is always part of the change set (a concurrent request may have added the key), but removing
        // a key that is not there does not by itself make the session need a write, as in ASP.NET Core's session.
        if (_values.Remove(key, out var old))
        {
            _size -= SessionSerializer.EntrySize(key, old.Length);
            _size += SessionSerializer.HeaderSize(_values.Count) - SessionSerializer.HeaderSize(_values.Count + 1);
            IsModified = true;
        }

        _changes[key] = null;
    }

    /// <summary>Removes every key.</summary>
    public void Clear()
    {
        // Like Remove: always part of the change set, but clearing empty data does not by itself need a write.
        IsModified |= _values.Count > 0;
        _values.Clear();
        _size = SessionSerializer.EmptySize;
        _changes.Clear();
        _cleared = true;
    }

    /// <summary>The change set is stored: what follows is a new change set, and the data is readable from now on.</summary>
    public void ChangesCommitted()
    {
        ForgetChanges();
        _unreadable = null;
    }

    /// <summary>The change set cannot be written anywhere (the row is gone): it is forgotten, the data stays as it is.</summary>
    public void ForgetChanges()
    {
        _changes.Clear();
        _cleared = false;
        IsModified = false;
    }

    /// <summary>Empty data and no change set, as for a session started afresh (abandoned).</summary>
    public void Reset()
    {
        _values.Clear();
        _size = SessionSerializer.EmptySize;
        _unreadable = null;
        ForgetChanges();
    }

    /// <summary>
    /// Re-applies the change set onto <paramref name="newer"/> values (a concurrent commit's; <see langword="null"/> when
    /// its bytes, <paramref name="newerBytes"/>, could not be read), so that keys this request did not change keep the
    /// other commit's values. Returns false, changing nothing, when the result would outgrow the limit (each request
    /// stayed under it on its own), with the size it would have.
    /// </summary>
    public bool TryRebase(Dictionary<string, byte[]>? newer, byte[] newerBytes, out int size)
    {
        var values = _cleared || newer is null ? new Dictionary<string, byte[]>(StringComparer.Ordinal) : newer;
        foreach (var (key, value) in _changes)
        {
            if (value is null)
            {
                values.Remove(key);
            }
            else
            {
                values[key] = value;
            }
        }

        size = SizeOf(values);
        if (size > _maxBytes)
        {
            return false;
        }

        _values = values;
        _size = size;
        _unreadable = newer is null ? newerBytes : null;
        return true;
    }

    private static int SizeOf(Dictionary<string, byte[]> values)
    {
        var size = SessionSerializer.HeaderSize(values.Count);
        foreach (var (key, value) in values)
        {
            size += SessionSerializer.EntrySize(key, value.Length);
        }

        return size;
    }

    private int SizeAfterSet(string key, int valueLength)
    {
        var size = _size;
        var count = _values.Count;
        if (_values.TryGetValue(key, out var old))
        {
            size -= SessionSerializer.EntrySize(key, old.Length);
        }
        else
        {
            size += SessionSerializer.HeaderSize(count + 1) - SessionSerializer.HeaderSize(count);
        }

        return size + SessionSerializer.EntrySize(key, valueLength);
    }
}
