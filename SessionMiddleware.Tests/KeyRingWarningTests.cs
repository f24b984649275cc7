using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>Servers that do not share a Data Protection key ring: their cookies are rejected, and that is said as a Warning, rate-limited.</summary>
public sealed class KeyRingWarningTests : TempFolderTest
{
    [Test]
    public async Task CookiesFromAnotherKeyRing_AgainAndAgain_LogOneWarningPerFiveMinutes_WithTheCountSinceTheLast()
    {
        await using var issuer = await SessionTestHost.StartAsync(Directory.CreateDirectory(Folder.File("a")).FullName);
        await using var other = await SessionTestHost.StartAsync(Directory.CreateDirectory(Folder.File("b")).FullName);
        var cookie = (await issuer.CreateRawClient().GetAsync("/set?key=a&value=1")).SetCookieValue(issuer.CookieName);
        var client = other.CreateRawClient();

        async Task<string> SendAsync(int times)
        {
            var last = "";
            for (var i = 0; i < times; i++)
            {
                last = await client.GetTextAsync("/get?key=a", $"{other.CookieName}={cookie}");
            }

            return last;
        }

        var answer = await SendAsync(3);
        var afterThree = Warnings(other.Logs);
        other.Time.Advance(TimeSpan.FromMinutes(4));
        await SendAsync(1);
        var afterFourMinutes = Warnings(other.Logs);
        other.Time.Advance(TimeSpan.FromMinutes(1));
        await SendAsync(1);
        var afterFiveMinutes = Warnings(other.Logs);

        Assert.Multiple(() =>
        {
            Assert.That(cookie, Is.Not.Null);
            Assert.That(answer, Is.EqualTo("(none)"), "the other server's cookie is not honoured");
            Assert.That(afterThree, Has.Count.EqualTo(1), "the first rejection warns at once; the next two are only counted");
            Assert.That(afterThree[0].Level, Is.EqualTo(LogLevel.Warning));
            Assert.That(afterThree[0].Message, Does.Contain("1 session cookies").And.Contain("another Data Protection key ring").And.Contain("Several servers"));
            Assert.That(afterFourMinutes, Has.Count.EqualTo(1), "at most one warning per five minutes");
            Assert.That(afterFiveMinutes, Has.Count.EqualTo(2));
            Assert.That(afterFiveMinutes[1].Message, Does.StartWith("4 session cookies"), "the count since the last warning");
            Assert.That(other.Logs.GetSnapshot().Count(r => r.Id.Name == "CookieRejected"), Is.EqualTo(5), "each one still at Debug");
            Assert.That(issuer.Logs.GetSnapshot().Where(r => r.Id.Name == "CookiesFromAnotherKeyRing"), Is.Empty);
        });
    }

    [Test]
    public async Task TamperedOrGarbageCookies_OfOneKind_AreNotTakenForAnotherKeyRing_WhenMalformed()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path);
        var client = host.CreateRawClient();

        using var garbage = await client.SendWithCookieAsync("/get?key=a", $"{host.CookieName}=%%%not-base64%%%");

        Assert.Multiple(() =>
        {
            Assert.That(garbage.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(Warnings(host.Logs), Is.Empty, "a malformed cookie is no sign of servers not sharing keys");
        });
    }

    private static List<FakeLogRecord> Warnings(FakeLogCollector logs) =>
        logs.GetSnapshot().Where(r => r.Id.Name == "CookiesFromAnotherKeyRing").ToList();
}
