using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using SessionMiddleware.OpenIdConnect;
using SessionMiddleware.OpenIdConnect.Internal;

namespace SessionMiddleware.Tests.OpenIdConnect;

/// <summary>What <c>MapBackChannelLogout</c> checks at startup, and the replay cache's bounds.</summary>
public sealed class BackChannelLogoutSetupTests
{
    private static WebApplication Build(Action<IServiceCollection> services)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Services.AddServerSideSessions();
        services(builder.Services);
        return builder.Build();
    }

    [Test]
    public async Task IssuedAtWindowOfZero_FailsTheMappingNamingTheOption()
    {
        await using var app = Build(s =>
        {
            s.AddAuthentication().AddOpenIdConnect(o => o.ClientId = "c");
            s.Configure<BackChannelLogoutOptions>(o => o.IssuedAtWindow = TimeSpan.Zero);
        });

        var error = Assert.Throws<OptionsValidationException>(() => app.MapBackChannelLogout());

        Assert.That(error!.Message, Does.Contain("BackChannelLogoutOptions.IssuedAtWindow"));
    }

    [Test]
    public async Task ReplayCacheSizeOfZero_FailsTheMappingNamingTheOption()
    {
        await using var app = Build(s =>
        {
            s.AddAuthentication().AddOpenIdConnect(o => o.ClientId = "c");
            s.Configure<BackChannelLogoutOptions>(o => o.ReplayCacheSize = 0);
        });

        var error = Assert.Throws<OptionsValidationException>(() => app.MapBackChannelLogout());

        Assert.That(error!.Message, Does.Contain("BackChannelLogoutOptions.ReplayCacheSize"));
    }

    [Test]
    public async Task NoOpenIdConnectScheme_FailsTheMappingWithAClearMessage()
    {
        await using var app = Build(s => s.AddAuthentication().AddCookie());

        var error = Assert.Throws<InvalidOperationException>(() => app.MapBackChannelLogout());

        Assert.That(error!.Message, Does.Contain("AddOpenIdConnect"));
    }

    [Test]
    public async Task NamedSchemeThatIsNotOpenIdConnect_FailsTheMappingNamingIt()
    {
        await using var app = Build(s => s.AddAuthentication().AddCookie().AddOpenIdConnect("corp", o => o.ClientId = "c"));

        var error = Assert.Throws<InvalidOperationException>(() => app.MapBackChannelLogout(scheme: CookieAuthenticationDefaults.AuthenticationScheme));

        Assert.That(error!.Message, Does.Contain("'Cookies'").And.Contain("corp"));
    }

    [Test]
    public void SchemeResolution_PrefersTheNamedThenTheDefaultChallengeThenTheOnlyOne()
    {
        var options = new Microsoft.AspNetCore.Authentication.AuthenticationOptions();
        options.AddScheme<Microsoft.AspNetCore.Authentication.OpenIdConnect.OpenIdConnectHandler>("corp", null);
        options.AddScheme<Microsoft.AspNetCore.Authentication.OpenIdConnect.OpenIdConnectHandler>("partner", null);

        Assert.That(OpenIdConnectSchemes.Resolve(options, "partner"), Is.EqualTo("partner"));
        Assert.Throws<InvalidOperationException>(() => OpenIdConnectSchemes.Resolve(options, null), "two schemes, none the default");
        options.DefaultChallengeScheme = "corp";
        Assert.That(OpenIdConnectSchemes.Resolve(options, null), Is.EqualTo("corp"));
    }

    [Test]
    public async Task WithoutTheSessionServices_TheMappingFails()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Services.AddAuthentication().AddOpenIdConnect(o => o.ClientId = "c");
        await using var app = builder.Build();

        var error = Assert.Throws<InvalidOperationException>(() => app.MapBackChannelLogout());

        Assert.That(error!.Message, Does.Contain("AddServerSideSessions"));
    }

    [Test]
    public void ReplayCache_RefusesASeenTokenUntilItsWindowEnds_PerIssuer()
    {
        var now = DateTimeOffset.UnixEpoch.AddYears(56);
        var cache = new LogoutTokenReplayCache(10);

        Assert.That(cache.TryAdd("https://a", "j1", now.AddMinutes(5), now), Is.True);
        Assert.That(cache.TryAdd("https://a", "j1", now.AddMinutes(5), now.AddMinutes(4)), Is.False, "a replay within the window");
        Assert.That(cache.TryAdd("https://b", "j1", now.AddMinutes(5), now), Is.True, "the same jti of another issuer");
        Assert.That(cache.TryAdd("https://a", "j1", now.AddMinutes(11), now.AddMinutes(6)), Is.True, "past the window the token is refused by its iat, and forgotten here");
    }

    [Test]
    public void ReplayCache_StaysWithinItsCapacity_ForgettingTheOldestFirst()
    {
        var now = DateTimeOffset.UnixEpoch.AddYears(56);
        var cache = new LogoutTokenReplayCache(3);
        for (var i = 0; i < 5; i++)
        {
            cache.TryAdd("https://a", "j" + i, now.AddMinutes(5 + i), now);
        }

        Assert.That(cache.Count, Is.EqualTo(3));
        Assert.That(cache.TryAdd("https://a", "j4", now.AddMinutes(9), now), Is.False, "the newest is kept");
        Assert.That(cache.TryAdd("https://a", "j0", now.AddMinutes(5), now), Is.True, "the oldest was forgotten");
    }
}
