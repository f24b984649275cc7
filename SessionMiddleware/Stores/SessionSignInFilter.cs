namespace SessionMiddleware;

/// <summary>
/// Which sessions to end by what they recorded at sign-in (<see cref="SessionSignIn"/>): the sessions of one provider
/// session, of one subject at a provider, or a user's sessions signed in with another credential stamp.
/// </summary>
public sealed record SessionSignInFilter
{
    private SessionSignInFilter(string? issuer, string? sid, string? subject, string? userId, string? credentialStamp)
    {
        Issuer = issuer;
        Sid = sid;
        Subject = subject;
        UserId = userId;
        CredentialStamp = credentialStamp;
    }

    /// <summary>The provider's issuer; set with <see cref="Sid"/> or <see cref="Subject"/>.</summary>
    public string? Issuer { get; }

    /// <summary>The provider's session ID: matches the sessions that recorded this <c>sid</c> at <see cref="Issuer"/>.</summary>
    public string? Sid { get; }

    /// <summary>The user's subject at the provider: matches every session of this <c>sub</c> at <see cref="Issuer"/>.</summary>
    public string? Subject { get; }

    /// <summary>The user whose sessions signed in with a credential stamp other than <see cref="CredentialStamp"/> match.</summary>
    public string? UserId { get; }

    /// <summary>The current credential stamp hash: a session of <see cref="UserId"/> that recorded another one matches (one that recorded none does not).</summary>
    public string? CredentialStamp { get; }

    /// <summary>The sessions signed in through the provider session <paramref name="sid"/> at <paramref name="issuer"/>.</summary>
    /// <param name="issuer">The provider's issuer.</param>
    /// <param name="sid">The provider's session ID.</param>
    /// <returns>The filter.</returns>
    public static SessionSignInFilter ProviderSession(string issuer, string sid)
    {
        ArgumentException.ThrowIfNullOrEmpty(issuer);
        ArgumentException.ThrowIfNullOrEmpty(sid);
        return new(issuer, sid, null, null, null);
    }

    /// <summary>Every session signed in as <paramref name="subject"/> at <paramref name="issuer"/>.</summary>
    /// <param name="issuer">The provider's issuer.</param>
    /// <param name="subject">The user's subject at the provider.</param>
    /// <returns>The filter.</returns>
    public static SessionSignInFilter ProviderSubject(string issuer, string subject)
    {
        ArgumentException.ThrowIfNullOrEmpty(issuer);
        ArgumentException.ThrowIfNullOrEmpty(subject);
        return new(issuer, null, subject, null, null);
    }

    /// <summary>The sessions of <paramref name="userId"/> that recorded a credential stamp other than <paramref name="credentialStamp"/>.</summary>
    /// <param name="userId">The user.</param>
    /// <param name="credentialStamp">The current credential stamp hash (as recorded in <see cref="SessionSignIn.CredentialStamp"/>).</param>
    /// <returns>The filter.</returns>
    public static SessionSignInFilter CredentialStampOtherThan(string userId, string credentialStamp)
    {
        ArgumentException.ThrowIfNullOrEmpty(userId);
        ArgumentException.ThrowIfNullOrEmpty(credentialStamp);
        return new(null, null, null, userId, credentialStamp);
    }
}
