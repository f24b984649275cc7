using Microsoft.AspNetCore.Http;

namespace SessionMiddleware;

/// <summary>
/// The session of the current request under <c>UseServerSideSessions</c>: what <see cref="HttpContext.Session"/>
/// returns, with what the server knows about the session besides its data.
/// </summary>
/// <remarks>
/// <see cref="ISession.Id"/> is a public handle derived from the stored hash of the secret ID: safe to log and
/// show, useless to present as a cookie.
/// </remarks>
public interface IServerSideSession : ISession
{
    /// <summary>The user this session is bound to, or <see langword="null"/>.</summary>
    string? UserId { get; }

    /// <summary>When the session was created (whole seconds); now for a session not stored yet.</summary>
    DateTimeOffset CreatedAt { get; }

    /// <summary>When the session was last recorded as used (whole seconds); now for a session not stored yet.</summary>
    DateTimeOffset LastAccessAt { get; }
}
