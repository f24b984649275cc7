using System.Net;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using SessionMiddleware.Cookies;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// Any cookie that is not one this application issued for a live session is a new empty session: a 200, never a 500,
/// never adopted (a write under it gets a brand-new ID), and the sessions it was derived from are untouched.
/// </summary>
public sealed class HostileCookieTests
{
    private TempFolder _folder = null!;
    private SessionTestHost _host = null!;
    private HostileCookieContext _context = null!;

    [OneTimeSetUp]
    public async Task OneTimeSetUp()
    {
        _folder = new TempFolder();
        _host = await SessionTestHost.StartAsync(_folder.Path);
        var client = _host.CreateRawClient();
        var manager = _host.Services.GetRequiredService<ISessionManager>();
        var name = _host.CookieName;

        async Task<string> NewSession(string value)
        {
            using var response = await client.GetAsync($"/set?key=secret&value={value}");
            return response.SetCookieValue(name)!;
        }

        var valid = await NewSession("victim-data");

        var revoked = await NewSession("revoked-data");
        await manager.RevokeAsync(await client.GetTextAsync("/id", $"{name}={revoked}"));

        var preRegeneration = await NewSession("renewed-data");
        using (var renew = await client.SendWithCookieAsync("/regenerate", $"{name}={preRegeneration}"))
        {
            Assert.That(renew.SetCookieValue(name), Is.Not.Null.And.Not.EqualTo(preRegeneration));
        }

        var abandoned = await NewSession("abandoned-data");
        using (await client.SendWithCookieAsync("/abandon", $"{name}={abandoned}"))
        {
        }

        var protector = _host.Services.GetRequiredService<IDataProtectionProvider>();
        var neverIssued = WebEncoders.Base64UrlEncode(protector.CreateProtector(SessionIdProtector.Purpose).Protect(SessionIdProtector.NewSecretId()));
        var otherPurpose = WebEncoders.Base64UrlEncode(protector.CreateProtector("another purpose").Protect(SessionIdProtector.NewSecretId()));
        var wrongLength = WebEncoders.Base64UrlEncode(protector.CreateProtector(SessionIdProtector.Purpose).Protect(new byte[16]));

        using var otherFolder = new TempFolder();
        await using (var other = await SessionTestHost.StartAsync(otherFolder.Path))
        {
            using var foreign = await other.CreateRawClient().GetAsync("/set?key=secret&value=foreign");
            _context = new HostileCookieContext(name, valid, revoked, preRegeneration, abandoned, neverIssued, otherPurpose, wrongLength, foreign.SetCookieValue(other.CookieName)!);
        }
    }

    [OneTimeTearDown]
    public async Task OneTimeTearDown()
    {
        await _host.DisposeAsync();
        _folder.Dispose();
    }

    /// <summary>Each variant gives the whole Cookie header to send.</summary>
    private static IEnumerable<TestCaseData> Variants()
    {
        static TestCaseData V(string name, Func<HostileCookieContext, string> header) => new TestCaseData(header).SetName("HostileCookie_" + name);
        static string C(HostileCookieContext c, string value) => $"{c.Name}={value}";

        yield return V("Empty", c => C(c, ""));
        yield return V("Garbage", c => C(c, "garbage"));
        yield return V("NotBase64", c => C(c, "!!!***%%%"));
        yield return V("PercentEncodedNul", c => C(c, "%00%00"));
        yield return V("Quotes", c => C(c, "\"\""));
        yield return V("Base64OfZeros32", c => C(c, WebEncoders.Base64UrlEncode(new byte[32])));
        yield return V("Base64OfZeros200", c => C(c, WebEncoders.Base64UrlEncode(new byte[200])));
        yield return V("RawSecretIdAsCookie", c => C(c, WebEncoders.Base64UrlEncode(SessionIdProtector.NewSecretId())));
        yield return V("PublicIdAsCookie", c => C(c, Convert.ToHexStringLower(SessionIdProtector.NewSecretId())));
        yield return V("CaseChanged", c => C(c, c.Valid.ToUpperInvariant()));
        yield return V("Reversed", c => C(c, new string(c.Valid.Reverse().ToArray())));
        yield return V("DoubledValue", c => C(c, c.Valid + c.Valid));
        yield return V("Oversized5000", c => C(c, new string('A', 5000)));
        yield return V("Oversized1025", c => C(c, new string('A', 1025)));
        yield return V("ValidPrefixOversized", c => C(c, c.Valid + new string('A', 2000)));
        yield return V("CharAppended", c => C(c, c.Valid + "A"));
        yield return V("CharPrepended", c => C(c, "A" + c.Valid));
        yield return V("LastCharRemoved", c => C(c, c.Valid[..^1]));
        yield return V("FirstCharRemoved", c => C(c, c.Valid[1..]));
        foreach (var fraction in new[] { 0.05, 0.1, 0.25, 0.5, 0.75, 0.9 })
        {
            yield return V($"TruncatedTo{fraction * 100}Percent", c => C(c, c.Valid[..(int)(c.Valid.Length * fraction)]));
        }

        for (var i = 0; i < 16; i++)
        {
            var position = i;
            yield return V($"BitFlippedAtByte{position}of16", c => C(c, FlipBit(c.Valid, position)));
        }

        for (var i = 0; i < 8; i++)
        {
            var seed = i;
            yield return V($"RandomBase64Garbage{seed}", c => C(c, RandomBase64(seed, c.Valid.Length)));
        }

        yield return V("FromAnotherKeyRing", c => C(c, c.Foreign));
        yield return V("SamePurposeNeverIssued", c => C(c, c.NeverIssued));
        yield return V("OtherPurposeSameKeyRing", c => C(c, c.OtherPurpose));
        yield return V("ProtectedWrongLength", c => C(c, c.WrongLength));
        yield return V("ReplayedRevoked", c => C(c, c.Revoked));
        yield return V("ReplayedPreRegeneration", c => C(c, c.PreRegeneration));
        yield return V("ReplayedAbandoned", c => C(c, c.Abandoned));
        yield return V("RepeatedNameGarbageTwice", c => $"{C(c, "garbage")}; {C(c, "more-garbage")}");
        yield return V("RepeatedNameRevokedThenAbandoned", c => $"{C(c, c.Revoked)}; {C(c, c.Abandoned)}");
        yield return V("RepeatedNameForeignThenTampered", c => $"{C(c, c.Foreign)}; {C(c, FlipBit(c.Valid, 8))}");
        yield return V("NameWithoutLeadingDot", c => $"{c.Name.TrimStart('.')}={c.Valid}");
        yield return V("NameOnlyNoEquals", c => c.Name);
    }

    [TestCaseSource(nameof(Variants))]
    public async Task HostileCookie_IsA200WithAnEmptySession_AndIsNeverAdopted(Func<HostileCookieContext, string> header)
    {
        var cookieHeader = header(_context);
        var client = _host.CreateRawClient();

        using var read = await client.SendWithCookieAsync("/get?key=secret", cookieHeader);
        using var keys = await client.SendWithCookieAsync("/keys", cookieHeader);
        using var write = await client.SendWithCookieAsync("/set?key=x&value=1", cookieHeader);
        var issued = write.SetCookieValue(_context.Name);

        Assert.Multiple(async () =>
        {
            Assert.That(read.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(await read.Content.ReadAsStringAsync(), Is.EqualTo("(none)"));
            Assert.That(await keys.Content.ReadAsStringAsync(), Is.EqualTo(""));
            Assert.That(write.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(issued, Is.Not.Null, "a write gets a new session");
            Assert.That(_context.KnownCookies, Does.Not.Contain(issued), "never one of the known cookies");
            Assert.That(cookieHeader, Does.Not.Contain(issued!), "never the presented ID");
            Assert.That(await client.GetTextAsync("/get?key=secret", $"{_context.Name}={_context.Valid}"), Is.EqualTo("victim-data"), "the genuine session is untouched");
        });
    }

    [Test]
    public async Task TamperedCookie_IsLoggedAtDebug_WithoutTheCookieValue()
    {
        var tampered = FlipBit(_context.Valid, 8);

        await _host.CreateRawClient().GetTextAsync("/nothing", $"{_context.Name}={tampered}");

        var logs = _host.Logs.GetSnapshot().Where(r => r.Id.Name == "CookieRejected").ToList();
        Assert.Multiple(() =>
        {
            Assert.That(logs, Is.Not.Empty);
            Assert.That(logs.Select(r => r.Level), Is.All.EqualTo(Microsoft.Extensions.Logging.LogLevel.Debug));
            Assert.That(logs.Select(r => r.Message), Has.None.Contains(tampered));
        });
    }

    [Test]
    public void Suite_HasAtLeastFiftyVariants() => Assert.That(Variants().Count(), Is.GreaterThanOrEqualTo(50));

    private static string FlipBit(string cookie, int sixteenth)
    {
        var bytes = WebEncoders.Base64UrlDecode(cookie);
        var i = Math.Clamp(bytes.Length * sixteenth / 16, 0, bytes.Length - 1);
        bytes[i] ^= (byte)(1 << (sixteenth % 8));
        return WebEncoders.Base64UrlEncode(bytes);
    }

    private static string RandomBase64(int seed, int length)
    {
        var bytes = new byte[Math.Max(1, length * 3 / 4)];
        new Random(seed).NextBytes(bytes);
        return WebEncoders.Base64UrlEncode(bytes);
    }

    /// <summary>Cookies made once for the suite.</summary>
    public sealed record HostileCookieContext(
        string Name, string Valid, string Revoked, string PreRegeneration, string Abandoned,
        string NeverIssued, string OtherPurpose, string WrongLength, string Foreign)
    {
        public IReadOnlyList<string> KnownCookies => [Valid, Revoked, PreRegeneration, Abandoned, NeverIssued, OtherPurpose, WrongLength, Foreign];
    }
}
