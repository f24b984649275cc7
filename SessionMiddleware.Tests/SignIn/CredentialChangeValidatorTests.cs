using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using SessionMiddleware.Authentication;
using SessionMiddleware.SignIn;

namespace SessionMiddleware.Tests.SignIn;

/// <summary>
/// The credential change validator on users it cannot end sessions for: it never fails Identity's update for them (a user
/// store without security stamps, a user without a stamp, a user whose ID the database has not given yet).
/// </summary>
public sealed class CredentialChangeValidatorTests
{
    [Test]
    public async Task AUserWithAStamp_EndsTheUsersSessionsThatRecordedAnother()
    {
        var sessions = new RecordingSessionManager();
        var user = new SignInTestUser { Id = "id-erin", UserName = "erin", SecurityStamp = "STAMP" };

        var result = await Validate(sessions, new IdentityUserStore(), user);

        Assert.Multiple(() =>
        {
            Assert.That(result.Succeeded);
            Assert.That(sessions.Calls, Is.EqualTo(new[] { (SessionSignInFilter.CredentialStampOtherThan("id-erin", SignInFacts.HashStamp("STAMP")), SessionEndReason.CredentialsChanged, (string?)null) }));
        });
    }

    [Test]
    public async Task AUserStoreWithoutSecurityStamps_EndsNothing()
    {
        var sessions = new RecordingSessionManager();

        var result = await Validate(sessions, new StamplessStore(), new SignInTestUser { Id = "id-erin", UserName = "erin" });

        Assert.Multiple(() =>
        {
            Assert.That(result.Succeeded);
            Assert.That(sessions.Calls, Is.Empty);
        });
    }

    [Test]
    public async Task AUserWithoutAStamp_EndsNothing()
    {
        var sessions = new RecordingSessionManager();

        var result = await Validate(sessions, new IdentityUserStore(), new SignInTestUser { Id = "id-erin", UserName = "erin", SecurityStamp = null });

        Assert.Multiple(() =>
        {
            Assert.That(result.Succeeded, "Identity throws on a null stamp; the validator must not fail the update for it");
            Assert.That(sessions.Calls, Is.Empty);
        });
    }

    [Test]
    public async Task AUserWithoutAnIdYet_EndsNothing()
    {
        // A user the database gives an ID on insert: CreateAsync validates it before.
        var sessions = new RecordingSessionManager();

        var result = await Validate(sessions, new IdentityUserStore(), new SignInTestUser { Id = "", UserName = "erin", SecurityStamp = "STAMP" });

        Assert.Multiple(() =>
        {
            Assert.That(result.Succeeded);
            Assert.That(sessions.Calls, Is.Empty);
        });
    }

    private static Task<IdentityResult> Validate(ISessionManager sessions, IUserStore<SignInTestUser> store, SignInTestUser user)
    {
        using var services = new ServiceCollection().BuildServiceProvider();
        var manager = new UserManager<SignInTestUser>(
            store, Options.Create(new IdentityOptions()), new PasswordHasher<SignInTestUser>(), [], [], new UpperInvariantLookupNormalizer(),
            new IdentityErrorDescriber(), services, NullLogger<UserManager<SignInTestUser>>.Instance);
        var validator = new CredentialChangeValidator<SignInTestUser>(sessions, NullLogger<CredentialChangeValidator<SignInTestUser>>.Instance);
        return validator.ValidateAsync(manager, user);
    }

    /// <summary>Records EndSignInsAsync; the validator calls nothing else.</summary>
    private sealed class RecordingSessionManager : ISessionManager
    {
        public List<(SessionSignInFilter Filter, string Reason, string? Except)> Calls { get; } = [];

        public Task<int> EndSignInsAsync(SessionSignInFilter filter, string reason, string? exceptSessionId = null, CancellationToken cancellationToken = default)
        {
            Calls.Add((filter, reason, exceptSessionId));
            return Task.FromResult(0);
        }

        public Task<IReadOnlyList<SessionInfo>> ListForUserAsync(string userId, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<bool> RevokeAsync(string sessionId, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<int> RevokeAllForUserAsync(string userId, string? exceptSessionId = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<SessionPage> QueryAsync(SessionFilter filter, int pageSize = 100, string? continuationToken = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public Task<long> CountAsync(SessionFilter filter, CancellationToken cancellationToken = default) => throw new NotSupportedException();
    }

    /// <summary>A user store with no security stamps at all.</summary>
    private sealed class StamplessStore : IUserStore<SignInTestUser>
    {
        public Task<IdentityResult> CreateAsync(SignInTestUser user, CancellationToken cancellationToken) => Task.FromResult(IdentityResult.Success);

        public Task<IdentityResult> UpdateAsync(SignInTestUser user, CancellationToken cancellationToken) => Task.FromResult(IdentityResult.Success);

        public Task<IdentityResult> DeleteAsync(SignInTestUser user, CancellationToken cancellationToken) => Task.FromResult(IdentityResult.Success);

        public Task<SignInTestUser?> FindByIdAsync(string userId, CancellationToken cancellationToken) => Task.FromResult<SignInTestUser?>(null);

        public Task<SignInTestUser?> FindByNameAsync(string normalizedUserName, CancellationToken cancellationToken) => Task.FromResult<SignInTestUser?>(null);

        public Task<string?> GetNormalizedUserNameAsync(SignInTestUser user, CancellationToken cancellationToken) => Task.FromResult(user.NormalizedUserName);

        public Task<string> GetUserIdAsync(SignInTestUser user, CancellationToken cancellationToken) => Task.FromResult(user.Id);

        public Task<string?> GetUserNameAsync(SignInTestUser user, CancellationToken cancellationToken) => Task.FromResult(user.UserName);

        public Task SetNormalizedUserNameAsync(SignInTestUser user, string? normalizedName, CancellationToken cancellationToken) => Task.CompletedTask;

        public Task SetUserNameAsync(SignInTestUser user, string? userName, CancellationToken cancellationToken) => Task.CompletedTask;

        public void Dispose()
        {
        }
    }
}
