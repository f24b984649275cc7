using Microsoft.Extensions.Options;

namespace SessionMiddleware.OpenIdConnect.Internal;

/// <summary>Checks <see cref="BackChannelLogoutOptions"/>, naming the option and its rule.</summary>
internal sealed class BackChannelLogoutOptionsValidator : IValidateOptions<BackChannelLogoutOptions>
{
    private static readonly TimeSpan MaxIssuedAtWindow = TimeSpan.FromDays(1);

    public ValidateOptionsResult Validate(string? name, BackChannelLogoutOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (options.IssuedAtWindow <= TimeSpan.Zero || options.IssuedAtWindow > MaxIssuedAtWindow)
        {
            failures.Add($"BackChannelLogoutOptions.IssuedAtWindow must be more than 0 and at most 1 day (was {options.IssuedAtWindow}).");
        }

        if (options.ReplayCacheSize < 1)
        {
            failures.Add($"BackChannelLogoutOptions.ReplayCacheSize must be at least 1 (was {options.ReplayCacheSize}).");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
