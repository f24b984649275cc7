using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.WebUtilities;
using SessionMiddleware.Ids;

namespace SessionMiddleware.Cookies;

/// <summary>
/// Makes and reads session cookies: a secret ID of 32 random bytes, protected (encrypted and signed) with
/// ASP.NET Core Data Protection and base64url-encoded. Only the SHA-256 hash of the secret ID is stored
/// (<see cref="SessionIds"/>).
/// </summary>
internal sealed class SessionIdProtector
{
    /// <summary>The Data Protection purpose; changing it invalidates every issued cookie.</summary>
    public const string Purpose = "SessionMiddleware.ServerSideSession.Id.v1";

    /// <summary>The reason <see cref="Unprotect(string?, out string?)"/> gives for a cookie another key ring protected (or a tampered one).</summary>
    public const string NotOurKeyRing = "not protected by this application's key ring, or tampered with";

    /// <summary>Cookies longer than this are rejected without any cryptographic work; a real one is far shorter.</summary>
    public const int MaxCookieLength = 1024;

    /// <summary>The most cookies whose secret ID is kept in memory (<see cref="_unprotected"/>).</summary>
    public const int MaxKept = 10_000;

    /// <summary>
    /// How long a cookie's secret ID is kept after it was unprotected: a Data Protection key revoked meanwhile stops
    /// the cookies it protected within this time (the row the ID leads to is checked on every request regardless).
    /// </summary>
    public static readonly TimeSpan KeptFor = TimeSpan.FromMinutes(1);

    private readonly IDataProtector _protector;
    private readonly TimeProvider _time;

    // Cookie value -> the secret ID it protects, for the cookies seen in the last minute: a browser sends the same cookie
    // with every request, and Data Protection's unprotect (about 12 µs) is then paid once a minute instead of every time.
    private readonly ConcurrentDictionary<string, (byte[] SecretId, long Until)> _unprotected = new(StringComparer.Ordinal);

    public SessionIdProtector(IDataProtectionProvider provider)
        : this(provider, TimeProvider.System)
    {
    }

    [Microsoft.Extensions.DependencyInjection.ActivatorUtilitiesConstructor]
    public SessionIdProtector(IDataProtectionProvider provider, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(provider);
        ArgumentNullException.ThrowIfNull(timeProvider);
        _protector = provider.CreateProtector(Purpose);
        _time = timeProvider;
    }

    /// <summary>How many cookies' secret IDs are kept now (for tests).</summary>
    internal int KeptCount => _unprotected.Count;

    public string Protect(byte[] secretId) => WebEncoders.Base64UrlEncode(_protector.Protect(secretId));

    /// <summary>Reads a cookie value; returns <see langword="null"/> and a reason for anything but a valid cookie.</summary>
    public byte[]? Unprotect(string? cookieValue, out string? reason)
    {
        reason = null;
        if (string.IsNullOrEmpty(cookieValue))
        {
            reason = "empty";
            return null;
        }

        if (cookieValue.Length > MaxCookieLength)
        {
            reason = "too long";
            return null;
        }

        var now = _time.GetTimestamp();
        if (_unprotected.TryGetValue(cookieValue, out var kept) && now < kept.Until)
        {
            return (byte[])kept.SecretId.Clone();
        }

        byte[] protectedBytes;
        try
        {
            protectedBytes = WebEncoders.Base64UrlDecode(cookieValue);
        }
        catch (FormatException)
        {
            reason = "not base64url";
            return null;
        }

        byte[] secretId;
        try
        {
            secretId = _protector.Unprotect(protectedBytes);
        }
        catch (CryptographicException)
        {
            reason = NotOurKeyRing;
            return null;
        }

        if (secretId.Length != SessionIds.SecretIdLength)
        {
            reason = "wrong length";
            return null;
        }

        if (_unprotected.Count >= MaxKept)
        {
            _unprotected.Clear();
        }

        _unprotected[cookieValue] = ((byte[])secretId.Clone(), now + (long)(KeptFor.TotalSeconds * _time.TimestampFrequency));
        return secretId;
    }
}
