using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SessionMiddleware.Concurrency;
using SessionMiddleware.Cookies;
using SessionMiddleware.Events;
using SessionMiddleware.Ids;
using SessionMiddleware.Logging;
using SessionMiddleware.Middleware;
using SessionMiddleware.Session;

namespace SessionMiddleware.Management;

/// <summary>The <see cref="ISessionManager"/> over the configured <see cref="IServerSideSessionStore"/>.</summary>
internal sealed class SessionManager(
    IServerSideSessionStore store,
    ILogger<SessionManager> logger,
    SessionEvents events,
    IOptions<ServerSideSessionOptions> options,
    IHttpContextAccessor? httpContextAccessor = null,
    RecentRenewals? renewals = null,
    CommitLocks? commitLocks = null) : ISessionManager
{
    /// <summary>The most sessions <see cref="ListForUserAsync"/> returns (the most recently used).</summary>
    internal const int MaxListedSessions = 1000;

    // The request the app calls from: the one the middleware is running, or (outside it) the accessor's, when the app
    // registered one (AddTicketStore does); null in a background job.
    private HttpContext? CurrentHttpContext => CurrentRequest.Context ?? httpContextAccessor?.HttpContext;

    /// <inheritdoc/>
    public Task<IReadOnlyList<SessionInfo>> ListForUserAsync(string userId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(userId);
        return store.ListByUserAsync(userId, MaxListedSessions, cancellationToken);
    }

    /// <inheritdoc/>
    public async Task<bool> RevokeAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sessionId);
        if (!SessionIds.TryParsePublicId(sessionId, out var key))
        {
            return false;
        }

        var row = await store.DeleteAsync(key, cancellationToken).ConfigureAwait(false);
        if (row is null && renewals is not null)
        {
            // No row under this ID: a renewal in this process may have moved the session, and the revoke follows it. A
            // renewal still committing holds the key's commit lock until it is recorded, so a miss waits for it once.
            if (!renewals.TryGet(key, out _) && commitLocks is not null)
            {
                (await commitLocks.EnterAsync(key, cancellationToken).ConfigureAwait(false)).Dispose();
            }

            while (row is null && renewals.TryGet(key, out var renewal))
            {
                key = renewal.NewKey;
                row = await store.DeleteAsync(key, cancellationToken).ConfigureAwait(false);
                if (row is not null)
                {
                    Log.RevokeFollowedRenewal(logger, sessionId, SessionIds.ToPublicId(key));
                }
            }
        }

        if (row is null)
        {
            return false;
        }

        // A row that had expired already ended by its timeout (the cleaner had not deleted it yet).
        var reason = events.ReasonFor(row, SessionEndReason.Revoked);
        if (reason == SessionEndReason.Revoked)
        {
            Log.SessionRevoked(logger, sessionId);
        }

        await events.EndedAsync(row, reason, CurrentHttpContext, cancellationToken).ConfigureAwait(false);
        return reason == SessionEndReason.Revoked;
    }

    /// <inheritdoc/>
    public async Task<int> RevokeAllForUserAsync(string userId, string? exceptSessionId = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(userId);
        var exceptKey = ExceptKeyOf(exceptSessionId);
        var count = await EndInBatchesAsync(
            (batchSize, token) => store.DeleteByUserAsync(userId, exceptKey, batchSize, token), SessionEndReason.Revoked, cancellationToken).ConfigureAwait(false);
        Log.UserSessionsRevoked(logger, count, userId.Length);
        return count;
    }

    /// <inheritdoc/>
    public async Task<int> EndSignInsAsync(SessionSignInFilter filter, string reason, string? exceptSessionId = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentException.ThrowIfNullOrEmpty(reason);
        var exceptKey = ExceptKeyOf(exceptSessionId);
        var count = await EndInBatchesAsync(
            (batchSize, token) => store.DeleteBySignInAsync(filter, exceptKey, batchSize, token), reason, cancellationToken).ConfigureAwait(false);
        Log.SignInsEnded(logger, count, reason);
        return count;
    }

    /// <summary>The key of <paramref name="exceptSessionId"/> as the row is stored now (<see cref="StoredKeyOf"/>), or null.</summary>
    /// <exception cref="ArgumentException">Not a public session ID.</exception>
    private byte[]? ExceptKeyOf(string? exceptSessionId)
    {
        byte[]? exceptKey = null;
        if (exceptSessionId is not null && !SessionIds.TryParsePublicId(exceptSessionId, out exceptKey))
        {
            throw new ArgumentException("Not a session ID (64 hexadecimal characters, as ISession.Id returns).", nameof(exceptSessionId));
        }

        return StoredKeyOf(exceptKey);
    }

    /// <summary>
    /// Batch by batch, so that a user with very many sessions never holds the (SQLite: the only) writer for long, each
    /// batch's ends raised (and its connections closed) before the next one; until a batch finds nothing (rows a concurrent
    /// delete took can make a batch short while others are left). Returns how many live sessions ended with <paramref name="reason"/>.
    /// </summary>
    private async Task<int> EndInBatchesAsync(Func<int, CancellationToken, Task<IReadOnlyList<SessionLifetime>>> deleteBatch, string reason, CancellationToken cancellationToken)
    {
        var batchSize = options.Value.CleanupBatchSize;
        var httpContext = CurrentHttpContext;
        var count = 0;
        while (true)
        {
            var rows = await deleteBatch(batchSize, cancellationToken).ConfigureAwait(false);
            if (rows.Count == 0)
            {
                return count;
            }

            foreach (var row in rows)
            {
                // A row that had expired already ended by its timeout (the cleaner had not deleted it yet).
                var rowReason = events.ReasonFor(row, reason);
                count += rowReason == reason ? 1 : 0;
                await events.EndedAsync(row, rowReason, httpContext, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// After <c>RegenerateId</c> in this request, <c>Id</c> is the new key, not yet stored: the key to spare is the one the
    /// row is stored under now (the commit renews it).
    /// </summary>
    private byte[]? StoredKeyOf(byte[]? exceptKey) =>
        exceptKey is not null &&
        CurrentHttpContext?.Features.Get<ISessionFeature>()?.Session is ServerSideSession { RenewFromKey: { } storedKey, Key: { } pendingKey } &&
        exceptKey.AsSpan().SequenceEqual(pendingKey)
            ? storedKey
            : exceptKey;

    /// <summary>The largest page <see cref="QueryAsync"/> returns.</summary>
    internal const int MaxPageSize = 1000;

    /// <inheritdoc/>
    public async Task<SessionPage> QueryAsync(SessionFilter filter, int pageSize = 100, string? continuationToken = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentOutOfRangeException.ThrowIfLessThan(pageSize, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(pageSize, MaxPageSize);
        SessionCursor? after = null;
        if (continuationToken is not null && !TryParseToken(continuationToken, out after))
        {
            throw new ArgumentException("Not a continuation token returned by QueryAsync.", nameof(continuationToken));
        }

        // One row more than the page tells whether another page follows, so the last page has no token.
        var rows = await store.QueryAsync(filter, after, pageSize + 1, cancellationToken).ConfigureAwait(false);
        if (rows.Count <= pageSize)
        {
            return new SessionPage(rows, null);
        }

        var page = rows.Take(pageSize).ToList();
        return new SessionPage(page, ToToken(page[^1]));
    }

    /// <inheritdoc/>
    public Task<long> CountAsync(SessionFilter filter, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        return store.CountAsync(filter, cancellationToken);
    }

    // "<created_at>.<public id>": the position of the last session of a page.
    private static string ToToken(SessionInfo last) =>
        string.Create(CultureInfo.InvariantCulture, $"{last.CreatedAt.ToUnixTimeSeconds()}.{last.Id}");

    private static bool TryParseToken(string token, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out SessionCursor? cursor)
    {
        cursor = null;
        var dot = token.IndexOf('.', StringComparison.Ordinal);
        if (dot <= 0 ||
            !long.TryParse(token.AsSpan(0, dot), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var createdAt) ||
            !SessionIds.TryParsePublicId(token[(dot + 1)..], out var key))
        {
            return false;
        }

        cursor = new SessionCursor(createdAt, key);
        return true;
    }
}
