namespace SessionMiddleware.Session;

/// <summary>What the session records about its sign-in (<see cref="SessionSignIn"/>), and the sign-in its next commit records.</summary>
internal sealed partial class ServerSideSession
{
    /// <inheritdoc/>
    public DateTimeOffset? SignedInAt => UserId is null ? null : SignIn?.At;

    /// <summary>The sign-in the row records (or will, once committed); <see langword="null"/> when no one signed in.</summary>
    public SessionSignIn? SignIn { get; private set; }

    /// <summary>
    /// What the ticket store learned of the sign-in in progress (provider, credential stamp); its time is set when the
    /// commit records it; one whose time is set keeps it (a new credential stamp recorded without a sign-in).
    /// <see langword="null"/> for a sign-in through <see cref="BindToUser"/> alone.
    /// </summary>
    public SessionSignIn? PendingSignIn { get; set; }

    /// <summary>
    /// The principal signing in through the ticket store in this request, for
    /// <see cref="ServerSideSessionOptions.MaxSessionsPerUserSelector"/>; <see langword="null"/> otherwise.
    /// </summary>
    public System.Security.Claims.ClaimsPrincipal? SigningInPrincipal { get; set; }

    /// <summary>Whether the next commit records a sign-in: a ticket store sign-in, a binding to another user, or a new session bound to a user.</summary>
    public bool SignsInAtCommit => UserId is not null && (PendingSignIn is not null || RenewalSignsIn || IsNew);

    /// <summary>The sign-in the next commit writes: a new one at <paramref name="now"/> when it signs in, otherwise the recorded one (none once unbound).</summary>
    /// <param name="now">Now.</param>
    /// <returns>The sign-in to store.</returns>
    public SessionSignIn? SignInToStore(DateTimeOffset now) =>
        UserId is null ? null :
        SignsInAtCommit ? PendingSignIn is { At: var kept } pending && kept != default ? pending :
            (PendingSignIn ?? new SessionSignIn(now)) with { At = DateTimeOffset.FromUnixTimeSeconds(now.ToUnixTimeSeconds()) } :
        SignIn;

    /// <summary>Records the sign-in the commit stored.</summary>
    /// <param name="signIn">What the row now records.</param>
    public void MarkSignInStored(SessionSignIn? signIn)
    {
        SignIn = signIn;
        PendingSignIn = null;
        SigningInPrincipal = null;
    }
}
