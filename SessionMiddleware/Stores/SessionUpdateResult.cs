namespace SessionMiddleware;

/// <summary>The outcome of <see cref="IServerSideSessionStore.UpdateAsync"/>.</summary>
/// <param name="Status">What happened.</param>
/// <param name="Version">The row's version after the update when <see cref="SessionUpdateStatus.Committed"/>; otherwise 0.</param>
public readonly record struct SessionUpdateResult(SessionUpdateStatus Status, long Version);
