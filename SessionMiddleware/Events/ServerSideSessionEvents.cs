namespace SessionMiddleware;

/// <summary>
/// What the app is told about sessions' lives (<see cref="ServerSideSessionOptions.Events"/>): set the delegates, or
/// derive from this class and override the methods. A handler that throws is logged (Warning) and ignored: it never fails
/// a request or a cleanup run.
/// </summary>
/// <remarks>
/// <para>
/// <see cref="OnCreated"/>, <see cref="OnRenewed"/> and <see cref="OnEnded"/> for an abandon, a sign-out or a revoke are
/// raised once the store has written the change, in the request (or the <see cref="ISessionManager"/> call) that made it:
/// at most once, so a process that dies right after the write does not raise them.
/// </para>
/// <para>
/// Sessions that expire are ended by the cleaner, outside any request (<see cref="SessionEventContext.HttpContext"/> is
/// <see langword="null"/>), batch by batch: it raises <see cref="OnEnded"/> for a batch of expired rows first and deletes
/// them after, so every expiry is raised <em>at least once</em>. A process that dies between the two raises the batch
/// again on its next run, and two servers cleaning one database at the same moment may both raise the same session:
/// make expiry handlers idempotent, with <see cref="SessionEventContext.SessionId"/> as the key.
/// </para>
/// </remarks>
public class ServerSideSessionEvents
{
    /// <summary>Raised when a new session is first stored (its first write; an empty session is never stored).</summary>
    public Func<SessionCreatedContext, Task> OnCreated { get; set; } = static _ => Task.CompletedTask;

    /// <summary>Raised when a session's ID was renewed (<see cref="IServerSideSession.RegenerateId"/>, a sign-in binding it to another user).</summary>
    public Func<SessionRenewedContext, Task> OnRenewed { get; set; } = static _ => Task.CompletedTask;

    /// <summary>Raised once per session ended, with the reason (<see cref="SessionEndReason"/>) and the user it was bound to.</summary>
    public Func<SessionEndedContext, Task> OnEnded { get; set; } = static _ => Task.CompletedTask;

    /// <summary>Invokes <see cref="OnCreated"/>.</summary>
    /// <param name="context">The new session.</param>
    /// <returns>The handler's task.</returns>
    public virtual Task Created(SessionCreatedContext context) => OnCreated(context);

    /// <summary>Invokes <see cref="OnRenewed"/>.</summary>
    /// <param name="context">The renewed session.</param>
    /// <returns>The handler's task.</returns>
    public virtual Task Renewed(SessionRenewedContext context) => OnRenewed(context);

    /// <summary>Invokes <see cref="OnEnded"/>.</summary>
    /// <param name="context">The ended session and why it ended.</param>
    /// <returns>The handler's task.</returns>
    public virtual Task Ended(SessionEndedContext context) => OnEnded(context);
}
