namespace SessionMiddleware.OpenIdConnect;

/// <summary>
/// Settings of the back-channel logout endpoint (<c>MapBackChannelLogout</c>). Configure them with
/// <c>builder.Services.Configure&lt;BackChannelLogoutOptions&gt;(...)</c>; they are checked when the endpoint is mapped.
/// </summary>
public sealed class BackChannelLogoutOptions
{
    /// <summary>The default of <see cref="IssuedAtWindow"/>: 5 minutes.</summary>
    public static readonly TimeSpan DefaultIssuedAtWindow = TimeSpan.FromMinutes(5);

    /// <summary>The default of <see cref="ReplayCacheSize"/>: 100,000 tokens.</summary>
    public const int DefaultReplayCacheSize = 100_000;

    /// <summary>
    /// How far a logout token's <c>iat</c> (issued at) may lie from now, in the past or (for a provider whose clock runs
    /// ahead) in the future; a token outside it is refused. It is also how long a token's <c>jti</c> is remembered to refuse
    /// its replay. More than 0 and at most 1 day; default 5 minutes.
    /// </summary>
    public TimeSpan IssuedAtWindow { get; set; } = DefaultIssuedAtWindow;

    /// <summary>
    /// The most token IDs (<c>jti</c>) remembered at once, in memory, to refuse replays within <see cref="IssuedAtWindow"/>.
    /// When it is full the oldest is forgotten first. At least 1; default 100,000.
    /// </summary>
    public int ReplayCacheSize { get; set; } = DefaultReplayCacheSize;
}
