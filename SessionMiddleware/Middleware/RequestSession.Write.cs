using SessionMiddleware.Ids;
using SessionMiddleware.Concurrency;
using SessionMiddleware.Cookies;
using SessionMiddleware.Diagnostics;
using SessionMiddleware.Logging;
using SessionMiddleware.Session;

namespace SessionMiddleware.Middleware;

/// <summary>
/// The write of a commit: the change set or the renewal, at the version the request loaded, merged onto concurrent
/// commits and following a concurrent renewal of this process.
/// </summary>
internal sealed partial class RequestSession
{
    /// <summary>The largest row a commit leaves beside its commit lock for the next commit of the session (see <see cref="WriteAsync"/>).</summary>
    private const int MaxRememberedRowBytes = 16 * 1024;

    /// <summary>The sign-in the renewal being written records.</summary>
    private SessionSignIn? _signInRenewed;

    /// <summary>Writes the change set (and the new key when renewing), merging with concurrent commits.</summary>
    /// <returns>The previous public ID when the session was renewed; otherwise <see langword="null"/>.</returns>
    private async Task<string?> WriteAsync(ServerSideSession session, bool renew, CancellationToken cancellationToken)
    {
        var rowKey = RowToWrite(session, renew);

        // Commits of one session in this process take turns, so a commit conflicts at most with other processes
        // and with the commits that finished since it loaded: one re-read, not a storm of retries.
        using var turn = await _runtime.CommitLocks.EnterAsync(rowKey, cancellationToken).ConfigureAwait(false);
        var merged = MergeCommitOfThisProcess(turn, session, rowKey);
        var adopted = false;
        var reload = false;
        for (var attempt = 1; ; attempt++)
        {
            if (reload)
            {
                var newer = await _runtime.Store.LoadAsync(rowKey, cancellationToken).ConfigureAwait(false);
                if (newer is null)
                {
                    rowKey = FollowGoneRow(session, rowKey, renew, ref adopted);
                    renew = false;
                    continue;
                }

                session.Rebase(newer);
                reload = false;
            }

            var result = await StartWrite(session, rowKey, renew, out var written, cancellationToken).ConfigureAwait(false);

            // Only the latest small row is kept, and none after a renewal (the row moved).
            turn.Remember(rowKey, result.Status == SessionUpdateStatus.Committed && written is { Length: <= MaxRememberedRowBytes } ? written : null, result.Version, _runtime.Now());
            switch (result.Status)
            {
                case SessionUpdateStatus.Committed:
                    _displaced = result.Displaced;
                    Metrics.Commit(attempt == 1 && !merged ? SessionMetrics.OutcomeCommitted : SessionMetrics.OutcomeMerged);
                    return renew ? Renewed(session, rowKey, result.Version) : Written(session, adopted, result.Version);

                case SessionUpdateStatus.NotFound when attempt < SessionRuntime.MaxCommitAttempts:
                    rowKey = FollowGoneRow(session, rowKey, renew, ref adopted);
                    renew = false;
                    reload = true;
                    break;

                case SessionUpdateStatus.Conflict when attempt < SessionRuntime.MaxCommitAttempts:
                    Log.CommitConflict(Logger, SessionIds.ToPublicId(rowKey), attempt);
                    reload = true;
                    break;

                default:
                    throw new InvalidOperationException(
                        $"Session {SessionIds.ToPublicId(rowKey)} could not be committed: it was changed by concurrent requests on each of {SessionRuntime.MaxCommitAttempts} attempts.");
            }
        }
    }

    /// <summary>The key of the row to write: the old one when renewing (a renewal of a session this request follows is refused).</summary>
    private static byte[] RowToWrite(ServerSideSession session, bool renew)
    {
        var rowKey = renew ? session.RenewFromKey! : session.Key!;
        if (renew && session.FollowsRenewal)
        {
            // The new ID would go to this request, which presented the ID the concurrent renewal retired.
            throw new InvalidOperationException(
                $"Session {SessionIds.ToPublicId(rowKey)} was renewed by a concurrent request while this one ran, so this request cannot renew it again; nothing was written.");
        }

        return rowKey;
    }

    /// <summary>
    /// When a commit of this process wrote the session while this request ran, merges onto what it wrote instead of
    /// meeting the conflict and reading the row again (another process's newer write still conflicts); returns whether it did.
    /// </summary>
    private static bool MergeCommitOfThisProcess(AsyncLock.Releaser turn, ServerSideSession session, byte[] rowKey)
    {
        if (turn.NewerThan(rowKey, session.Version, session.UserId, session.CreatedAt) is not { } committed)
        {
            return false;
        }

        session.Rebase(committed);
        return true;
    }

    /// <summary>
    /// The row is gone since this request loaded it (or followed it there): renewed again, and followed to its new key
    /// (returned; <paramref name="adopted"/> when this request took the renewal as its own), or ended, and thrown.
    /// </summary>
    private byte[] FollowGoneRow(ServerSideSession session, byte[] rowKey, bool renew, ref bool adopted)
    {
        adopted |= FollowRenewal(session, rowKey, renew) ?? throw Gone(session, rowKey);
        return session.Key!;
    }

    /// <summary>
    /// Starts one write of the session under <paramref name="rowKey"/> at its version: the renewal to the new key, or the
    /// data (<paramref name="written"/>, which the commit lock keeps for the next commit of the session).
    /// </summary>
    private Task<SessionUpdateResult> StartWrite(ServerSideSession session, byte[] rowKey, bool renew, out byte[]? written, CancellationToken cancellationToken)
    {
        if (renew)
        {
            written = null;
            var row = NewRow(session);
            _signInRenewed = row.SignIn;
            return _runtime.Store.RenewAsync(rowKey, session.Version, row, cancellationToken);
        }

        written = session.Serialize();
        return _runtime.Store.UpdateAsync(rowKey, written, session.Version, ExpiresAt(session), cancellationToken);
    }

    /// <summary>The renewal is stored under the new key: recorded for the requests still on the old one, logged, and the new cookie set.</summary>
    /// <returns>The previous public ID.</returns>
    private string Renewed(ServerSideSession session, byte[] oldKey, long version)
    {
        _touched = true;

        // Recorded before the commit lock is let go: a request of this session that loaded the old row and finds it
        // gone looks here under the same lock.
        _runtime.Renewals.Add(oldKey, session.Key!, session.SecretId!, session.UserId, session.RenewalChangesUser);
        _runtime.Live.SessionRenewed(oldKey, session.Key!, session.UserId);
        session.MarkRenewed(version, _runtime.Now());
        session.MarkSignInStored(_signInRenewed);
        Metrics.SessionRenewed();
        var previousId = SessionIds.ToPublicId(oldKey);
        Log.SessionRenewed(Logger, previousId, session.Id);
        Cookies.Set(Context, session.SecretId!, ExpiresAt(session));
        return previousId;
    }

    /// <summary>
    /// The change set is stored: the cookie is refreshed (set, when this request took a concurrent renewal's ID as its
    /// own), unless the request follows another's renewal, whose response carries the cookie.
    /// </summary>
    private string? Written(ServerSideSession session, bool adopted, long version)
    {
        _touched = true;
        session.MarkCommitted(version, _runtime.Now());
        if (adopted && !session.FollowsRenewal)
        {
            Cookies.Set(Context, session.SecretId!, ExpiresAt(session));
        }
        else if (!session.FollowsRenewal)
        {
            Cookies.Refresh(Context, session.SecretId, ExpiresAt(session));
        }

        return null;
    }

    /// <summary>
    /// The row this request loaded is gone at its commit: follows the session if this process renewed it meanwhile.
    /// Returns null when it cannot (no renewal known, or this request renews too and is not a sign-in of the same user),
    /// otherwise whether this request took the renewal as its own (and so sends its cookie).
    /// </summary>
    private bool? FollowRenewal(ServerSideSession session, byte[] rowKey, bool renewing)
    {
        if (!_runtime.Renewals.TryGet(rowKey, out var renewal))
        {
            return null;
        }

        if (!renewing)
        {
            if (renewal.SignIn)
            {
                // Renewed by a sign-in (or a change of user) while this request ran: this request began as someone else,
                // perhaps an attacker who planted the old ID, so nothing it does reaches the signed-in session.
                Log.RenewalBySignInNotFollowed(Logger, SessionIds.ToPublicId(rowKey));
                return null;
            }

            session.FollowRenewal(renewal.NewKey);
            Log.RenewalFollowed(Logger, SessionIds.ToPublicId(rowKey), session.Id);
            return false;
        }

        // A sign-in racing a sign-in of the same user (a double-submitted form): one session, the first renewal's ID.
        // Any other renewal here would hand the other request's new ID to a holder of the old one, or renew the browser's
        // new cookie away: it fails instead.
        if (!session.FollowsRenewal && session.RenewalSignsIn && string.Equals(session.UserId, renewal.UserId, StringComparison.Ordinal))
        {
            session.AdoptRenewal(renewal.NewKey, renewal.NewSecretId);
            Log.RenewalAdopted(Logger, SessionIds.ToPublicId(rowKey), session.Id);
            return true;
        }

        return null;
    }

    /// <summary>A write found its row gone and no renewal to follow: nothing is written, and the client is told (never a success for a dropped write).</summary>
    private InvalidOperationException Gone(ServerSideSession session, byte[] rowKey)
    {
        Log.SessionGoneAtCommit(Logger, SessionIds.ToPublicId(rowKey));
        session.MarkGone();
        return GoneException(rowKey);
    }

    // No cookie expiry: the browser may hold a newer cookie from a concurrent request (a renewal on another server);
    // only an explicit Abandon or sign-out expires it.
    private static InvalidOperationException GoneException(byte[] rowKey) => new(
        $"Session {SessionIds.ToPublicId(rowKey)} was removed while this request ran (revoked, abandoned, expired, renewed " +
        "on another server, or renewed by a sign-in, which requests begun before it never write into): this request's changes were not written.");
}
