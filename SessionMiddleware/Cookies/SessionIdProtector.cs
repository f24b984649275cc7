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

    private readonly IDataProtector _protector;

    // Cookie value -> the secret ID it protects, for the cookies seen in the last minute.
    private readonly RecentlyUnprotected<string, byte[]> _unprotected;

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
        _unprotected = new(timeProvider, static secretId => (byte[])secretId.Clone());
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

        if (_unprotected.TryGet(cookieValue, out var kept))
        {
            return kept;
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

        if (!SessionIds.IsSecretIdLength(secretId.Length))
        {
            reason = "wrong length";
            return null;
        }

        _unprotected.Keep(cookieValue, secretId);
        return secretId;
    }
}
