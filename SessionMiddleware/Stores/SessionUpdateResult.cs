namespace SessionMiddleware;

/// <summary>The outcome of <see cref="IServerSideSessionStore.UpdateAsync"/>.</summary>
/// <param name="Status">What happened.</param>
/// <param name="Version">The row's version after the update when <see cref="SessionUpdateStatus.Committed"/>; otherwise 0.</param>
public readonly record struct SessionUpdateResult(SessionUpdateStatus Status, long Version)
{
    private readonly IReadOnlyList<SessionLifetime>? _displaced;

    /// <summary>
    /// From <see cref="IServerSideSessionStore.RenewAsync"/> under <see cref="NewSession.UserLimit"/>: the user's other
    /// sessions the renewal ended to stay within the cap; empty otherwise.
    /// </summary>
    public IReadOnlyList<SessionLifetime> Displaced
    {
        get => _displaced ?? [];
        init => _displaced = value;
    }

    /// <summary>Equal when <see cref="Status"/> and <see cref="Version"/> are (what became of the update; <see cref="Displaced"/> is a side report).</summary>
    /// <param name="other">The other result.</param>
    /// <returns>Whether the two say the same of the update.</returns>
    public bool Equals(SessionUpdateResult other) => Status == other.Status && Version == other.Version;

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Status, Version);
}
