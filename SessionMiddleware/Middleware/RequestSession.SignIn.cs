using SessionMiddleware.Logging;
using SessionMiddleware.Session;

namespace SessionMiddleware.Middleware;

/// <summary>
/// A commit that signs a user in: the cap on the user's sessions (<see cref="ServerSideSessionOptions.MaxSessionsPerUser"/>),
/// which the store enforces in the same transaction, and the ends of the sessions it displaced.
/// </summary>
internal sealed partial class RequestSession
{
    /// <summary>The cap the sign-in being committed applies; resolved once per commit that signs in.</summary>
    private SessionUserLimit? _userLimit;

    /// <summary>The sessions the last capped write ended, whose ends are raised once its commit lock is let go.</summary>
    private IReadOnlyList<SessionLifetime> _displaced = [];

    /// <summary>
    /// After the ticket store bound the session in a sign-in: under a cap the sign-in is committed at once, so that a
    /// refusal (<see cref="SessionLimitExceededException"/>) comes out of <c>SignInAsync</c>, where the app can answer it,
    /// before any authentication cookie is written; otherwise as any change of the ticket store.
    /// </summary>
    /// <param name="cancellationToken">Cancels the commit.</param>
    public Task CommitSignInAsync(CancellationToken cancellationToken)
    {
        var options = _runtime.Options;
        var capped = options.MaxSessionsPerUser > 0 || options.MaxSessionsPerUserSelector is not null;
        return capped ? CommitAsync(cancellationToken) : CommitIfLateAsync();
    }

    /// <summary>Resolves the cap when this commit signs a user in (the selector may look the user up).</summary>
    private async ValueTask PrepareSignInAsync(ServerSideSession session)
    {
        _userLimit = null;
        if (!session.SignsInAtCommit || session.UserId is not { } userId)
        {
            return;
        }

        var options = _runtime.Options;
        var max = options.MaxSessionsPerUserSelector is { } selector
            ? await selector(new MaxSessionsContext(Context, userId, session.SigningInPrincipal ?? Context.User)).ConfigureAwait(false)
            : options.MaxSessionsPerUser;
        if (max < 0)
        {
            throw new InvalidOperationException(
                $"ServerSideSessionOptions.{nameof(ServerSideSessionOptions.MaxSessionsPerUserSelector)} returned {max} for a user; return 0 for no cap or a positive cap.");
        }

        _userLimit = max > 0 ? new SessionUserLimit(max, options.WhenMaxSessionsReached) : null;
    }

    /// <summary>The cap for <see cref="NewRow"/>: only on the write that signs in.</summary>
    private SessionUserLimit? UserLimitOf(ServerSideSession session) => session.SignsInAtCommit ? _userLimit : null;

    /// <summary>Raises the end of each session the sign-in displaced (closing their live connections).</summary>
    private async Task EndDisplacedAsync()
    {
        var displaced = _displaced;
        _displaced = [];
        foreach (var row in displaced)
        {
            Log.SessionDisplaced(Logger, Ids.SessionIds.ToPublicId(row.Key), _userLimit?.MaxSessions ?? 0);
            await _runtime.Events.EndedAsync(row, _runtime.Events.ReasonFor(row, SessionEndReason.SessionLimit), Context, Context.RequestAborted).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The store refused the sign-in at the cap: nothing of it was stored, and this request's changes are dropped so that no
    /// later commit tries again (the browser keeps the session it had).
    /// </summary>
    private void SignInRefused(SessionLimitExceededException refusal)
    {
        Log.SignInRefused(Logger, refusal.MaxSessions, SafeId());
        Metrics.SignInRefused(SessionEndReason.SessionLimit);
        Discard(logChanges: false);
    }
}
