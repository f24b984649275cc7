namespace SessionMiddleware.Storage;

/// <summary>
/// The decision of a capped sign-in (<see cref="NewSession.UserLimit"/>), the same in every store: given the user's other
/// live sessions, most recently used first, which to end, or the refusal. The store runs it in the transaction that binds
/// the session, serialized per user, so simultaneous sign-ins never leave more than the cap.
/// </summary>
internal static class SessionUserLimits
{
    /// <summary>The keys to end so that the sign-in leaves the user at most <see cref="SessionUserLimit.MaxSessions"/> sessions.</summary>
    /// <param name="limit">The cap and what to do at it.</param>
    /// <param name="userId">The user signing in.</param>
    /// <param name="others">The user's other live sessions' keys, most recently used first (<see cref="SessionSql.ListOthersOfUser"/>).</param>
    /// <returns>The least recently used keys beyond the cap (none when under it).</returns>
    /// <exception cref="SessionLimitExceededException">At the cap under <see cref="MaxSessionsBehavior.RefuseSignIn"/>.</exception>
    public static IReadOnlyList<byte[]> KeysToEnd(SessionUserLimit limit, string userId, IReadOnlyList<byte[]> others)
    {
        ArgumentNullException.ThrowIfNull(limit);
        ArgumentNullException.ThrowIfNull(others);
        var allowedOthers = Math.Max(0, limit.MaxSessions - 1);
        if (others.Count <= allowedOthers)
        {
            return [];
        }

        if (limit.Behavior == MaxSessionsBehavior.RefuseSignIn)
        {
            throw new SessionLimitExceededException(userId, limit.MaxSessions);
        }

        return [.. others.Skip(allowedOthers)];
    }

    /// <summary>Whether <paramref name="session"/> is a capped sign-in (a user and a limit).</summary>
    /// <param name="session">The row to insert or renew to.</param>
    /// <returns><see langword="true"/> when the store must enforce the cap.</returns>
    public static bool IsCapped(NewSession session) => session.UserLimit is { MaxSessions: > 0 } && session.UserId is not null;
}
