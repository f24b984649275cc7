using System.Net;
using Microsoft.AspNetCore.WebUtilities;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>Any cookie that is not one this application issued for a live session is a new empty session: never a 500, never adopted.</summary>
public sealed class HostileCookieTests
{
    private TempFolder _folder = null!;
    private SessionTestHost _host = null!;
    private string _validCookie = null!;

    [OneTimeSetUp]
    public async Task OneTimeSetUp()
    {
        _folder = new TempFolder();
        _host = await SessionTestHost.StartAsync(_folder.Path);
        using var response = await _host.CreateRawClient().GetAsync("/set?key=secret&value=victim-data");
        _validCookie = response.SetCookieValue(_host.CookieName)!;
    }

    [OneTimeTearDown]
    public async Task OneTimeTearDown()
    {
        await _host.DisposeAsync();
        _folder.Dispose();
    }

    private static IEnumerable<TestCaseData> Variants()
    {
        yield return new TestCaseData((Func<string, string>)(_ => "")).SetName("Cookie_Empty_IsANewEmptySession");
        yield return new TestCaseData((Func<string, string>)(_ => "garbage")).SetName("Cookie_Garbage_IsANewEmptySession");
        yield return new TestCaseData((Func<string, string>)(_ => "!!!***%%%")).SetName("Cookie_NotBase64_IsANewEmptySession");
        yield return new TestCaseData((Func<string, string>)(_ => WebEncoders.Base64UrlEncode(new byte[32]))).SetName("Cookie_Base64OfZeros_IsANewEmptySession");
        yield return new TestCaseData((Func<string, string>)(_ => WebEncoders.Base64UrlEncode(new byte[200]))).SetName("Cookie_Base64Garbage_IsANewEmptySession");
        yield return new TestCaseData((Func<string, string>)(c => c[..(c.Length / 2)])).SetName("Cookie_TruncatedToHalf_IsANewEmptySession");
        yield return new TestCaseData((Func<string, string>)(c => c[..^1])).SetName("Cookie_LastCharRemoved_IsANewEmptySession");
        yield return new TestCaseData((Func<string, string>)(c => c + "A")).SetName("Cookie_CharAppended_IsANewEmptySession");
        yield return new TestCaseData((Func<string, string>)(c => FlipBit(c, 10))).SetName("Cookie_BitFlippedInHeader_IsANewEmptySession");
        yield return new TestCaseData((Func<string, string>)(c => FlipBit(c, c.Length / 2))).SetName("Cookie_BitFlippedInPayload_IsANewEmptySession");
        yield return new TestCaseData((Func<string, string>)(c => FlipBit(c, c.Length - 3))).SetName("Cookie_BitFlippedInMac_IsANewEmptySession");
        yield return new TestCaseData((Func<string, string>)(c => new string('A', 5000))).SetName("Cookie_Oversized_IsANewEmptySession");
        yield return new TestCaseData((Func<string, string>)(c => c + new string('A', 2000))).SetName("Cookie_ValidPrefixOversized_IsANewEmptySession");
        yield return new TestCaseData((Func<string, string>)(c => c.ToUpperInvariant())).SetName("Cookie_CaseChanged_IsANewEmptySession");
    }

    [TestCaseSource(nameof(Variants))]
    public async Task HostileCookie(Func<string, string> mutate)
    {
        var cookie = mutate(_validCookie);
        Assume.That(cookie, Is.Not.EqualTo(_validCookie));
        var client = _host.CreateRawClient();

        using var read = await client.SendWithCookieAsync("/get?key=secret", $"{_host.CookieName}={cookie}");
        using var write = await client.SendWithCookieAsync("/set?key=x&value=1", $"{_host.CookieName}={cookie}");

        Assert.Multiple(async () =>
        {
            Assert.That(read.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(await read.Content.ReadAsStringAsync(), Is.EqualTo("(none)"));
            Assert.That(write.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            var issued = write.SetCookieValue(_host.CookieName);
            Assert.That(issued, Is.Not.Null.And.Not.EqualTo(cookie).And.Not.EqualTo(_validCookie));
        });
    }

    [Test]
    public async Task Cookie_FromAnotherKeyRing_IsANewEmptySession()
    {
        using var otherFolder = new TempFolder();
        await using var other = await SessionTestHost.StartAsync(otherFolder.Path);
        using var foreign = await other.CreateRawClient().GetAsync("/set?key=secret&value=foreign");
        var foreignCookie = foreign.SetCookieValue(other.CookieName)!;

        var text = await _host.CreateRawClient().GetTextAsync("/get?key=secret", $"{_host.CookieName}={foreignCookie}");

        Assert.That(text, Is.EqualTo("(none)"));
    }

    [Test]
    public async Task Cookie_Valid_StillWorksAfterTheHostileOnes()
    {
        var text = await _host.CreateRawClient().GetTextAsync("/get?key=secret", $"{_host.CookieName}={_validCookie}");
        Assert.That(text, Is.EqualTo("victim-data"));
    }

    private static string FlipBit(string cookie, int index)
    {
        var bytes = WebEncoders.Base64UrlDecode(cookie);
        var i = Math.Clamp(index * 3 / 4, 0, bytes.Length - 1);
        bytes[i] ^= 0x01;
        return WebEncoders.Base64UrlEncode(bytes);
    }
}
