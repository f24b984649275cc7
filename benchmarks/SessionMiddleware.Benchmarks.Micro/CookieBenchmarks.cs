using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.DependencyInjection;
using SessionMiddleware.Cookies;
using SessionMiddleware.Ids;

namespace SessionMiddleware.Benchmarks.Micro;

/// <summary>
/// The cookie: protect a new secret ID (once per new session), unprotect a cookie (once per request with a
/// cookie), and the SHA-256 of the secret ID (the stored key). Data Protection with its default algorithms
/// (AES-256-CBC + HMACSHA256) and an in-memory key ring, as an app gets it from AddDataProtection().
/// </summary>
[MemoryDiagnoser]
public class CookieBenchmarks
{
    private ServiceProvider? _services;
    private SessionIdProtector _protector = null!;
    private byte[] _secretId = [];
    private string _cookie = "";
    private IDataProtector _dataProtector = null!;
    private byte[] _protectedBytes = [];

    [GlobalSetup]
    public void Setup()
    {
        _services = new ServiceCollection().AddDataProtection().UseEphemeralDataProtectionProvider().Services.BuildServiceProvider();
        _protector = new SessionIdProtector(_services.GetRequiredService<IDataProtectionProvider>());
        _secretId = SessionIds.NewSecretId(DateTimeOffset.UtcNow);
        _cookie = _protector.Protect(_secretId);
        _dataProtector = _services.GetRequiredService<IDataProtectionProvider>().CreateProtector(SessionIdProtector.Purpose);
        _protectedBytes = Microsoft.AspNetCore.WebUtilities.WebEncoders.Base64UrlDecode(_cookie);
    }

    [GlobalCleanup]
    public void Cleanup() => _services?.Dispose();

    [Benchmark]
    public string Protect() => _protector.Protect(_secretId);

    /// <summary>A cookie read again within the minute its secret ID is kept: no Data Protection.</summary>
    [Benchmark]
    public byte[]? Unprotect() => _protector.Unprotect(_cookie, out _);

    /// <summary>Data Protection's unprotect of the cookie's bytes: what a cookie not kept in memory costs.</summary>
    [Benchmark]
    public byte[] UnprotectNotKept() => _dataProtector.Unprotect(_protectedBytes);

    [Benchmark]
    public byte[] ComputeKey() => SessionIds.ComputeKey(_secretId);

    [Benchmark]
    public byte[] NewSecretId() => SessionIds.NewSecretId(DateTimeOffset.UtcNow);
}
