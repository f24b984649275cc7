namespace SessionMiddleware;

/// <summary>What a sign-in does when its user already has <see cref="ServerSideSessionOptions.MaxSessionsPerUser"/> other sessions.</summary>
public enum MaxSessionsBehavior
{
    /// <summary>The sign-in proceeds and the user's least recently used other sessions end (reason <see cref="SessionEndReason.SessionLimit"/>).</summary>
    EndLeastRecentlyUsed,

    /// <summary>The sign-in is refused with <see cref="SessionLimitExceededException"/>; nothing is stored.</summary>
    RefuseSignIn,
}
