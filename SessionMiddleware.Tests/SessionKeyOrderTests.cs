using System.Security.Cryptography;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using SessionMiddleware.Cookies;
using SessionMiddleware.Ids;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// Session IDs as the app and the store see them: a new or renewed session's key begins with the time its ID was issued
/// on the app's clock (so the store appends its row), and a session whose cookie carries a secret ID of the earlier
/// format (32 random bytes, keyed by their whole SHA-256) still loads after the upgrade. Over each store.
/// </summary>
[LaneFixture(StoreKind.Sqlite)]
[LaneFixture(StoreKind.PostgreSql)]
public sealed class SessionKeyOrderTests(StoreKind store)
{
    [Test]
    public async Task NewAndRenewedSessions_HaveKeysInTheOrderTheirIdsWereIssued()
    {
        using var folder = new TempFolder();
        await using var host = await SessionTestHost.StartAsync(folder.Path, o => o.NewSessionLimit = 0, store: store);
        var client = host.CreateRawClient();
        var name = host.CookieName;

        var ids = new List<string>();
        string? renewable = null;
        for (var i = 0; i < 5; i++)
        {
            using var response = await client.GetAsync($"/set?key=k&value={i}");
            renewable ??= response.SetCookieValue(name);
            ids.Add(host.SessionIdOf(response.SetCookieValue(name)!));
            host.Time.Advance(TimeSpan.FromMilliseconds(3));
        }

        using (var renewal = await client.SendWithCookieAsync("/regenerate", $"{name}={renewable}"))
        {
            ids.Add(host.SessionIdOf(renewal.SetCookieValue(name)!));
        }

        Assert.Multiple(() =>
        {
            Assert.That(ids, Is.Ordered.Using((IComparer<string>)StringComparer.Ordinal), "hex compares as the bytes do");
            Assert.That(ids[0][..12], Is.EqualTo(host.Time.GetUtcNow().AddMilliseconds(-15).ToUnixTimeMilliseconds().ToString("x12", System.Globalization.CultureInfo.InvariantCulture)),
                "the first key begins with its issue time on the app's TimeProvider");
        });
    }

    [Test]
    public async Task ASessionWhoseCookieHoldsAnIdOfTheEarlierFormat_LoadsAndKeepsItsId()
    {
        using var folder = new TempFolder();
        await using var host = await SessionTestHost.StartAsync(folder.Path, store: store);
        var client = host.CreateRawClient();
        var name = host.CookieName;

        // A session of the earlier format: its row keyed by the SHA-256 of a 32-byte secret ID, which its cookie protects.
        using (var created = await client.GetAsync("/set?key=cart&value=three-books"))
        {
            Assert.That(created.SetCookieValue(name), Is.Not.Null);
        }

        var oldSecret = RandomNumberGenerator.GetBytes(32);
        var oldKey = SHA256.HashData(oldSecret);
        Assert.That(await host.ExecuteScalarAsync("UPDATE sessions SET id = @id RETURNING 1", ("id", oldKey)), Is.EqualTo(1));
        var protector = host.Services.GetRequiredService<IDataProtectionProvider>().CreateProtector(SessionIdProtector.Purpose);
        var cookie = $"{name}={WebEncoders.Base64UrlEncode(protector.Protect(oldSecret))}";

        Assert.Multiple(async () =>
        {
            Assert.That(await client.GetTextAsync("/get?key=cart", cookie), Is.EqualTo("three-books"));
            Assert.That(await client.GetTextAsync("/id", cookie), Is.EqualTo(Convert.ToHexStringLower(oldKey)));
        });

        using var write = await client.SendWithCookieAsync("/set?key=cart&value=four-books", cookie);
        Assert.Multiple(async () =>
        {
            Assert.That(write.SetCookieValue(name) is null || host.SessionIdOf(write.SetCookieValue(name)!) == Convert.ToHexStringLower(oldKey), "no new session");
            Assert.That(await client.GetTextAsync("/get?key=cart", cookie), Is.EqualTo("four-books"));
            Assert.That(await host.CountRowsAsync(), Is.EqualTo(1));
        });
    }
}
