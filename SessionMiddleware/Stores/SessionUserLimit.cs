namespace SessionMiddleware;

/// <summary>
/// The cap a sign-in applies to its user's sessions (<see cref="ServerSideSessionOptions.MaxSessionsPerUser"/>): the store
/// enforces it in the transaction that binds the session, so simultaneous sign-ins cannot exceed it.
/// </summary>
/// <param name="MaxSessions">The most live sessions the user may have, this one included; at least 1.</param>
/// <param name="Behavior">What happens when the user already has that many others.</param>
public sealed record SessionUserLimit(int MaxSessions, MaxSessionsBehavior Behavior);
