using Microsoft.Extensions.Logging;
using SessionMiddleware.Cookies;
using SessionMiddleware.Logging;

namespace SessionMiddleware.Management;

/// <summary>The <see cref="ISessionManager"/> over the configured <see cref="IServerSideSessionStore"/>.</summary>
internal sealed class SessionManager(IServerSideSessionStore store, ILogger<SessionManager> logger) : ISessionManager
{
    /// <inheritdoc/>
    public Task<IReadOnlyList<SessionInfo>> ListForUserAsync(string userId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(userId);
        return store.ListByUserAsync(userId, cancellationToken);
    }

    /// <inheritdoc/>
    public async Task<bool> RevokeAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sessionId);
        if (!SessionIdProtector.TryParsePublicId(sessionId, out var key))
        {
            return false;
        }

        var revoked = await store.DeleteAsync(key, cancellationToken).ConfigureAwait(false);
        if (revoked)
        {
            Log.SessionRevoked(logger, sessionId);
        }

        return revoked;
    }

    /// <inheritdoc/>
    public async Task<int> RevokeAllForUserAsync(string userId, string? exceptSessionId = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(userId);
        byte[]? exceptKey = null;
        if (exceptSessionId is not null && !SessionIdProtector.TryParsePublicId(exceptSessionId, out exceptKey))
        {
            throw new ArgumentException("Not a session ID (64 hexadecimal characters, as ISession.Id returns).", nameof(exceptSessionId));
        }

        var count = await store.DeleteByUserAsync(userId, exceptKey, cancellationToken).ConfigureAwait(false);
        Log.UserSessionsRevoked(logger, count, userId.Length);
        return count;
    }
}
