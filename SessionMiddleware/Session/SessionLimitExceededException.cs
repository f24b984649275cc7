namespace SessionMiddleware;

/// <summary>
/// A sign-in was refused because its user already has the most sessions allowed
/// (<see cref="ServerSideSessionOptions.MaxSessionsPerUser"/> with <see cref="MaxSessionsBehavior.RefuseSignIn"/>). Nothing
/// of the sign-in was stored; the session is as it was before it.
/// </summary>
public sealed class SessionLimitExceededException : InvalidOperationException
{
    /// <summary>Creates the exception for <paramref name="userId"/> and its cap.</summary>
    /// <param name="userId">The user who signed in.</param>
    /// <param name="maxSessions">The cap that applied.</param>
    public SessionLimitExceededException(string userId, int maxSessions)
        : base($"User '{userId}' already has {maxSessions} session(s), the most allowed (ServerSideSessionOptions.MaxSessionsPerUser, WhenMaxSessionsReached = RefuseSignIn); the sign-in was refused and nothing was stored.")
    {
        UserId = userId;
        MaxSessions = maxSessions;
    }

    /// <summary>The user whose sign-in was refused.</summary>
    public string UserId { get; }

    /// <summary>The cap that applied.</summary>
    public int MaxSessions { get; }
}
