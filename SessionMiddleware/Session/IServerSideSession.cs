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

    /// <summary>
    /// When the user last proved who they are in this session (whole seconds): the sign-in that bound it (through
    /// <see cref="BindToUser"/> or the ticket store's <c>SignInAsync</c>), not a sliding renewal; <see langword="null"/>
    /// when no one is signed in. What <c>RequireRecentSignIn</c> checks.
    /// </summary>
    DateTimeOffset? SignedInAt { get; }

    /// <summary>
    /// Binds the session to a user (or unbinds it with <see langword="null"/>). Binding to a different user than
    /// before, including from none and to none, also renews the session ID (<see cref="RegenerateId"/>), as OWASP
    /// asks on every change of privilege. Binding to the same user again changes nothing.
    /// </summary>
    /// <param name="userId">The user's ID, or <see langword="null"/> to unbind.</param>
    /// <exception cref="InvalidOperationException">The user changes after the response has started (the new cookie could not be sent); nothing is changed.</exception>
    void BindToUser(string? userId);

    /// <summary>
    /// Gives the session a new secret ID and cookie when it is committed, keeping its data, user and creation time.
    /// The old ID is dead at once: a request presenting the old cookie gets an empty session.
    /// <see cref="ISession.Id"/> returns the new ID from this call on.
    /// </summary>
    /// <exception cref="InvalidOperationException">Called after the response has started (the new cookie could not be sent); nothing is changed.</exception>
    void RegenerateId();

    /// <summary>
    /// Ends the session: its row is deleted and its cookie expired when the request commits. The session is empty
    /// afterwards; anything written to it later in the same request starts a new session with a new ID.
    /// </summary>
    void Abandon();

    /// <summary>
    /// Cancelled when the session ends, for whatever reason and wherever it is ended: revoked through
    /// <see cref="ISessionManager"/> (on this server or another), abandoned, signed out, bound to another user, expired.
    /// For work that outlives a request or streams for long on behalf of the session (server-sent events, a streaming
    /// response, background work): pass it on, or link it with <c>HttpContext.RequestAborted</c>.
    /// </summary>
    /// <remarks>
    /// The first read tracks the session in this process until it ends (a few hundred bytes per session). A new session
    /// is tracked once this request stores it; when the request stores nothing, the token is cancelled at its end. A new
    /// ID for the same user (<see cref="RegenerateId"/>, a sign-in again) does not end the session; a change of user does.
    /// </remarks>
    CancellationToken Ended { get; }
}
