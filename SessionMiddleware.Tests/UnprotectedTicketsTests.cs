using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.DependencyInjection;
using SessionMiddleware.Authentication;
using SessionMiddleware.Session;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// The ticket store's per-process cache of unprotected tickets (<see cref="UnprotectedTickets"/>): it serves only the exact
/// bytes the row keeps, and every request gets its own copy.
/// </summary>
public sealed class UnprotectedTicketsTests : TempFolderTest
{
    private static AuthenticationTicket Ticket(string user) =>
        new(new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.NameIdentifier, user)], "Cookies")), "Cookies");

    [Test]
    public void AnEntry_ServesOnlyTheBytesItWasMadeFrom_AndACopyEachTime()
    {
        var cache = new UnprotectedTickets();
        var kept = new SessionTicket("ref-1", null, [1, 2, 3]);
        cache.Set(kept, Ticket("alice"));

        var first = cache.Get(kept);
        var second = cache.Get(kept with { ProtectedTicket = [1, 2, 3] });
        var replaced = cache.Get(kept with { ProtectedTicket = [1, 2, 4] });
        var otherReference = cache.Get(kept with { Id = "ref-2" });

        Assert.Multiple(() =>
        {
            Assert.That(first?.Principal.FindFirst(ClaimTypes.NameIdentifier)?.Value, Is.EqualTo("alice"));
            Assert.That(second, Is.Not.Null.And.Not.SameAs(first), "each caller gets its own copy");
            Assert.That(second!.Principal, Is.Not.SameAs(first!.Principal));
            Assert.That(replaced, Is.Null, "a ticket replaced in the row (other bytes) misses");
            Assert.That(otherReference, Is.Null);
        });
    }

    [Test]
    public void TheCache_IsBounded()
    {
        var cache = new UnprotectedTickets();
        for (var i = 0; i < UnprotectedTickets.MaxEntries + 10; i++)
        {
            cache.Set(new SessionTicket("ref-" + i, null, [1]), Ticket("u"));
        }

        Assert.That(cache.Count, Is.LessThanOrEqualTo(UnprotectedTickets.MaxEntries));
    }

    /// <summary>
    /// A claims transformation that adds a claim to the principal it is given (as many do) sees a fresh principal on every
    /// signed-in request: the cached ticket is never handed out itself.
    /// </summary>
    [Test]
    public async Task AClaimsTransformationThatChangesThePrincipal_SeesAFreshOneOnEveryRequest()
    {
        await using var host = await AuthTestApp.StartAsync(Folder.Path, services: s => s.Services.AddSingleton<IClaimsTransformation, AddsAClaim>());
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/signin?user=alice");

        var counts = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            counts.Add(await browser.GetTextAsync("/added-claims"));
        }

        Assert.That(counts, Is.EqualTo(new[] { "1", "1", "1" }));
    }

    /// <summary>A revoked session's cached ticket vouches for nothing: the store looks only for what the row keeps.</summary>
    [Test]
    public async Task AfterARevoke_TheCachedTicketDoesNotSignTheBrowserIn()
    {
        await using var host = await AuthTestApp.StartAsync(Folder.Path);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/signin?user=alice");
        var before = await browser.GetTextAsync("/whoami");

        await host.Services.GetRequiredService<ISessionManager>().RevokeAllForUserAsync("alice");

        Assert.Multiple(async () =>
        {
            Assert.That(before, Is.EqualTo("alice"));
            Assert.That(await browser.GetTextAsync("/whoami"), Is.EqualTo("anonymous"));
        });
    }

    private sealed class AddsAClaim : IClaimsTransformation
    {
        public Task<ClaimsPrincipal> TransformAsync(ClaimsPrincipal principal)
        {
            if (principal.Identity is ClaimsIdentity { IsAuthenticated: true } identity)
            {
                identity.AddClaim(new Claim("added", "yes"));
            }

            return Task.FromResult(principal);
        }
    }
}
