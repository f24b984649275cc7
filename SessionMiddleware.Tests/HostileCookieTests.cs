using System.Net;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using SessionMiddleware.Cookies;
using SessionMiddleware.Ids;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// Any cookie that is not one this application issued for a live session is a new empty session: a 200, never a 500,
/// never adopted (a write under it gets a brand-new ID, compared as IDs: two cookies of one session differ as strings),
/// and the sessions it was derived from are untouched. Over each store.
/// </summary>
[LaneFixture(StoreKind.Sqlite)]
[LaneFixture(StoreKind.PostgreSql)]
public sealed class HostileCookieTests(StoreKind store)
{
    private TempFolder _folder = null!;
    private SessionTestHost _host = null!;
    private HostileCookieContext _context = null!;

    [OneTimeSetUp]
    public async Task OneTimeSetUp()
    {
        _folder = new TempFolder();
        // Every case of the fixture shares this host and creates sessions from 127.0.0.1 within one (fake) minute, more
        // than NewSessionLimit allows one client; the limit has its own tests (NewSessionLimitTests).
        _host = await SessionTestHost.StartAsync(_folder.Path, o => o.NewSessionLimit = 0, store: store);
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
        var neverIssued = WebEncoders.Base64UrlEncode(protector.CreateProtector(SessionIdProtector.Purpose).Protect(SessionIds.NewSecretId(DateTimeOffset.UtcNow)));
        var otherPurpose = WebEncoders.Base64UrlEncode(protector.CreateProtector("another purpose").Protect(SessionIds.NewSecretId(DateTimeOffset.UtcNow)));
        var wrongLength = WebEncoders.Base64UrlEncode(protector.CreateProtector(SessionIdProtector.Purpose).Protect(new byte[16]));

        using var otherFolder = new TempFolder();
        await using (var other = await SessionTestHost.StartAsync(otherFolder.Path))
        {
            using var foreign = await other.CreateRawClient().GetAsync("/set?key=secret&value=foreign");
            var foreignCookie = foreign.SetCookieValue(other.CookieName)!;

            // The IDs these cookies name (those a key ring can read): a hostile cookie must never end up in one of them.
            string[] knownIds = [.. new[] { valid, revoked, preRegeneration, abandoned, neverIssued }.Select(_host.SessionIdOf), other.SessionIdOf(foreignCookie)];
            _context = new HostileCookieContext(name, valid, revoked, preRegeneration, abandoned, neverIssued, otherPurpose, wrongLength, foreignCookie, knownIds);
        }
    }

    [OneTimeTearDown]
    public async Task OneTimeTearDown()
    {
        await _host.DisposeAsync();
        _folder.Dispose();
    }

    /// <summary>What the middleware makes of a variant's cookie before it finds no session.</summary>
    public enum Seen
    {
        /// <summary>Not readable with this key ring and purpose, or malformed: <c>CookieRejected</c> at Debug.</summary>
        Rejected,

        /// <summary>One of ours, but its row is gone: <c>SessionNotFound</c>.</summary>
        NoSession,

        /// <summary>Not a cookie of the session's name at all.</summary>
        NoCookie,
    }

    /// <summary>Each variant gives the whole Cookie header to send, and what the middleware should make of it.</summary>
    private static IEnumerable<TestCaseData> Variants()
    {
        static TestCaseData V(string name, Func<HostileCookieContext, string> header, Seen seen = Seen.Rejected) =>
            new TestCaseData(header, seen).SetName("HostileCookie_" + name);
        static string C(HostileCookieContext c, string value) => $"{c.Name}={value}";

        yield return V("Empty", c => C(c, ""), Seen.NoCookie);
        yield return V("Garbage", c => C(c, "garbage"));
        yield return V("NotBase64", c => C(c, "!!!***%%%"));
        yield return V("PercentEncodedNul", c => C(c, "%00%00"));
        yield return V("Quotes", c => C(c, "\"\""));
        yield return V("Base64OfZeros32", c => C(c, WebEncoders.Base64UrlEncode(new byte[32])));
        yield return V("Base64OfZeros200", c => C(c, WebEncoders.Base64UrlEncode(new byte[200])));
        yield return V("RawSecretIdAsCookie", c => C(c, WebEncoders.Base64UrlEncode(SessionIds.NewSecretId(DateTimeOffset.UtcNow))));
        yield return V("PublicIdAsCookie", c => C(c, Convert.ToHexStringLower(SessionIds.NewSecretId(DateTimeOffset.UtcNow))));
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
        yield return V("SamePurposeNeverIssued", c => C(c, c.NeverIssued), Seen.NoSession);
        yield return V("OtherPurposeSameKeyRing", c => C(c, c.OtherPurpose));
        yield return V("ProtectedWrongLength", c => C(c, c.WrongLength));
        yield return V("ReplayedRevoked", c => C(c, c.Revoked), Seen.NoSession);
        yield return V("ReplayedPreRegeneration", c => C(c, c.PreRegeneration), Seen.NoSession);
        yield return V("ReplayedAbandoned", c => C(c, c.Abandoned), Seen.NoSession);
        yield return V("RepeatedNameGarbageTwice", c => $"{C(c, "garbage")}; {C(c, "more-garbage")}");
        yield return V("RepeatedNameRevokedThenAbandoned", c => $"{C(c, c.Revoked)}; {C(c, c.Abandoned)}", Seen.NoSession);
        yield return V("RepeatedNameForeignThenTampered", c => $"{C(c, c.Foreign)}; {C(c, FlipBit(c.Valid, 8))}");
        yield return V("NameWithoutLeadingDot", c => $"{c.Name.TrimStart('.')}={c.Valid}", Seen.NoCookie);
        yield return V("NameOnlyNoEquals", c => c.Name, Seen.NoCookie);
    }

    [TestCaseSource(nameof(Variants))]
    public async Task HostileCookie_IsA200WithAnEmptySession_AndIsNeverAdopted(Func<HostileCookieContext, string> header, Seen seen)
    {
        var cookieHeader = header(_context);
        var client = _host.CreateRawClient();

        var logsBefore = _host.Logs.GetSnapshot().Count;
        using var read = await client.SendWithCookieAsync("/get?key=secret", cookieHeader);
        var logged = _host.Logs.GetSnapshot().Skip(logsBefore).Select(r => r.Id.Name).ToList();
        using var keys = await client.SendWithCookieAsync("/keys", cookieHeader);
        using var write = await client.SendWithCookieAsync("/set?key=x&value=1", cookieHeader);
        var issued = write.SetCookieValue(_context.Name);

        // Adopting the presented cookie (its ID, or anything derived from it) would put this second write in the first's session.
        using var again = await client.SendWithCookieAsync("/set?key=y&value=2", cookieHeader);
        var issuedAgain = again.SetCookieValue(_context.Name);

        Assert.Multiple(async () =>
        {
            Assert.That(read.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(await read.Content.ReadAsStringAsync(), Is.EqualTo("(none)"));
            Assert.That(await keys.Content.ReadAsStringAsync(), Is.EqualTo(""));
            Assert.That(write.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(issued, Is.Not.Null, "a write gets a new session");
            Assert.That(issuedAgain, Is.Not.Null, "the second write gets a new session too");
            if (issued is null || issuedAgain is null)
            {
                return;
            }

            Assert.That(_context.KnownIds, Does.Not.Contain(_host.SessionIdOf(issued)), "never the ID of a known session, such as the presented one");
            Assert.That(_host.SessionIdOf(issuedAgain), Is.Not.EqualTo(_host.SessionIdOf(issued)), "the same cookie presented again is not in the first write's session");
            Assert.That(await client.GetTextAsync("/keys", $"{_context.Name}={issuedAgain}"), Is.EqualTo("y"));
            Assert.That(await client.GetTextAsync("/get?key=secret", $"{_context.Name}={_context.Valid}"), Is.EqualTo("victim-data"), "the genuine session is untouched");
            Assert.That(logged, seen switch
            {
                Seen.Rejected => Does.Contain("CookieRejected").And.No.Contain("SessionNotFound"),
                Seen.NoSession => Does.Contain("SessionNotFound").And.No.Contain("CookieRejected"),
                _ => Has.None.EqualTo("CookieRejected").And.None.EqualTo("SessionNotFound"),
            }, $"seen as {seen}");
        });
    }

    [Test]
    public async Task TamperedCookie_IsLoggedAtDebug_WithoutTheCookieValue()
    {
        var tampered = FlipBit(_context.Valid, 8);
        var logsBefore = _host.Logs.GetSnapshot().Count;

        await _host.CreateRawClient().GetTextAsync("/nothing", $"{_context.Name}={tampered}");

        var logs = _host.Logs.GetSnapshot().Skip(logsBefore).Where(r => r.Id.Name == "CookieRejected").ToList();
        Assert.Multiple(() =>
        {
            Assert.That(logs, Has.Count.EqualTo(1), "this request's cookie was rejected");
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
        string NeverIssued, string OtherPurpose, string WrongLength, string Foreign, IReadOnlyList<string> KnownIds);
}
