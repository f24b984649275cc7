using System.Collections.Concurrent;
using Microsoft.AspNetCore.Identity;

namespace SessionMiddleware.Tests.SignIn;

/// <summary>A user of the sign-in policy tests, with a profile field that changes without a new security stamp.</summary>
public sealed class SignInTestUser
{
    public string Id { get; set; } = "";

    public string? UserName { get; set; }

    public string? NormalizedUserName { get; set; }

    public string? PasswordHash { get; set; }

    public string? SecurityStamp { get; set; }

    public bool TwoFactorEnabled { get; set; }

    public string? DisplayName { get; set; }
}

/// <summary>Users in a dictionary: what Identity needs for passwords, security stamps and two-factor settings, nothing more.</summary>
internal sealed class IdentityUserStore : IUserPasswordStore<SignInTestUser>, IUserSecurityStampStore<SignInTestUser>, IUserTwoFactorStore<SignInTestUser>
{
    private readonly ConcurrentDictionary<string, SignInTestUser> _users = new(StringComparer.Ordinal);

    /// <summary>How many updates the store saved (a validator that fails the update keeps this unchanged).</summary>
    public int Updates;

    public Task<IdentityResult> CreateAsync(SignInTestUser user, CancellationToken cancellationToken)
    {
        _users[user.Id] = user;
        return Task.FromResult(IdentityResult.Success);
    }

    public Task<IdentityResult> UpdateAsync(SignInTestUser user, CancellationToken cancellationToken)
    {
        _users[user.Id] = user;
        Interlocked.Increment(ref Updates);
        return Task.FromResult(IdentityResult.Success);
    }

    public Task<IdentityResult> DeleteAsync(SignInTestUser user, CancellationToken cancellationToken) =>
        Task.FromResult(_users.TryRemove(user.Id, out _) ? IdentityResult.Success : IdentityResult.Failed());

    public Task<SignInTestUser?> FindByIdAsync(string userId, CancellationToken cancellationToken) => Task.FromResult(_users.GetValueOrDefault(userId));

    public Task<SignInTestUser?> FindByNameAsync(string normalizedUserName, CancellationToken cancellationToken) =>
        Task.FromResult(_users.Values.FirstOrDefault(u => u.NormalizedUserName == normalizedUserName));

    public Task<string?> GetNormalizedUserNameAsync(SignInTestUser user, CancellationToken cancellationToken) => Task.FromResult(user.NormalizedUserName);

    public Task<string> GetUserIdAsync(SignInTestUser user, CancellationToken cancellationToken) => Task.FromResult(user.Id);

    public Task<string?> GetUserNameAsync(SignInTestUser user, CancellationToken cancellationToken) => Task.FromResult(user.UserName);

    public Task SetNormalizedUserNameAsync(SignInTestUser user, string? normalizedName, CancellationToken cancellationToken)
    {
        user.NormalizedUserName = normalizedName;
        return Task.CompletedTask;
    }

    public Task SetUserNameAsync(SignInTestUser user, string? userName, CancellationToken cancellationToken)
    {
        user.UserName = userName;
        return Task.CompletedTask;
    }

    public Task SetPasswordHashAsync(SignInTestUser user, string? passwordHash, CancellationToken cancellationToken)
    {
        user.PasswordHash = passwordHash;
        return Task.CompletedTask;
    }

    public Task<string?> GetPasswordHashAsync(SignInTestUser user, CancellationToken cancellationToken) => Task.FromResult(user.PasswordHash);

    public Task<bool> HasPasswordAsync(SignInTestUser user, CancellationToken cancellationToken) => Task.FromResult(user.PasswordHash is not null);

    public Task SetSecurityStampAsync(SignInTestUser user, string stamp, CancellationToken cancellationToken)
    {
        user.SecurityStamp = stamp;
        return Task.CompletedTask;
    }

    public Task<string?> GetSecurityStampAsync(SignInTestUser user, CancellationToken cancellationToken) => Task.FromResult(user.SecurityStamp);

    public Task SetTwoFactorEnabledAsync(SignInTestUser user, bool enabled, CancellationToken cancellationToken)
    {
        user.TwoFactorEnabled = enabled;
        return Task.CompletedTask;
    }

    public Task<bool> GetTwoFactorEnabledAsync(SignInTestUser user, CancellationToken cancellationToken) => Task.FromResult(user.TwoFactorEnabled);

    public void Dispose()
    {
    }
}
