using System.Security.Cryptography;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.DependencyInjection;
using SessionMiddleware.Ids;
using SessionMiddleware.Logging;
using SessionMiddleware.Middleware;
using SessionMiddleware.Session;

namespace SessionMiddleware.Authentication;

/// <summary>
/// Cookie authentication's <see cref="ITicketStore"/> for one scheme, on the request's server-side session: the ticket
/// lives in the session row (protected, out of sight of <see cref="ISession.Keys"/>) and the authentication cookie
/// carries only a reference to it. So the row governs the sign-in: when it is revoked, expires or is cleaned, the next
/// request is anonymous.
/// </summary>
/// <remarks>
/// A binding scheme (the app's sign-in cookie) binds the session to the user and renews its ID at sign-in, and its
/// sign-out ends the session. A helper scheme (Identity's external and two-factor steps) only keeps its ticket there.
/// </remarks>
internal sealed class ServerSideTicketStore : ITicketStore
{
    private readonly string _scheme;
    private readonly bool _binds;
    private readonly string _userIdClaimType;
    private readonly string _securityStampClaimType;
    private readonly IDataProtector _protector;
    private readonly UnprotectedTickets _tickets = new();
    private readonly IHttpContextAccessor _httpContextAccessor;
    private readonly ILogger _logger;

    public ServerSideTicketStore(
        string scheme, bool binds, string userIdClaimType, IDataProtector protector, IHttpContextAccessor httpContextAccessor, ILogger logger,
        string securityStampClaimType = SignInFacts.DefaultSecurityStampClaimType)
    {
        _scheme = scheme;
        _binds = binds;
        _userIdClaimType = userIdClaimType;
        _securityStampClaimType = securityStampClaimType;
        _protector = protector;
        _httpContextAccessor = httpContextAccessor;
        _logger = logger;
    }

    public Task<string> StoreAsync(AuthenticationTicket ticket) => StoreAsync(ticket, CurrentContext(), CancellationToken.None);

    public Task<string> StoreAsync(AuthenticationTicket ticket, CancellationToken cancellationToken) => StoreAsync(ticket, CurrentContext(), cancellationToken);

    public async Task<string> StoreAsync(AuthenticationTicket ticket, HttpContext httpContext, CancellationToken cancellationToken)
    {
        var request = await RequestOfAsync(httpContext).ConfigureAwait(false) ?? throw LoadFailed();
        var reference = await Store(ticket, request.Session).ConfigureAwait(false);
        await (_binds ? request.CommitSignInAsync(cancellationToken) : request.CommitIfLateAsync()).ConfigureAwait(false);
        return reference;
    }

    /// <summary>A sign-in: keeps the ticket under a new reference; a binding scheme binds the session to the user and renews its ID.</summary>
    private Task<string> Store(AuthenticationTicket ticket, ServerSideSession session)
    {
        ArgumentNullException.ThrowIfNull(ticket);
        if (_binds)
        {
            var userId = UserIdOf(ticket);
            if (session.UserId is not null && !string.Equals(session.UserId, userId, StringComparison.Ordinal))
            {
                // Another user signs in on this browser: the previous user's sign-ins end.
                session.RemoveAllTickets();
            }

            if (string.Equals(session.UserId, userId, StringComparison.Ordinal))
            {
                session.RegenerateId();
            }
            else
            {
                session.BindToUser(userId);   // renews the ID
            }

            session.SigningIn = true;
            session.PendingSignIn = SignInFacts.Of(ticket.Principal, _securityStampClaimType);
            session.SigningInPrincipal = ticket.Principal;
        }

        var reference = NewReference();
        Keep(session, reference, ticket);
        Log.TicketStored(_logger, _scheme, session.Id);
        return Task.FromResult(reference);
    }

    public Task RenewAsync(string key, AuthenticationTicket ticket) => RenewAsync(key, ticket, CurrentContext(), CancellationToken.None);

    public Task RenewAsync(string key, AuthenticationTicket ticket, CancellationToken cancellationToken) => RenewAsync(key, ticket, CurrentContext(), cancellationToken);

    public async Task RenewAsync(string key, AuthenticationTicket ticket, HttpContext httpContext, CancellationToken cancellationToken)
    {
        var request = await RequestOfAsync(httpContext).ConfigureAwait(false) ?? throw LoadFailed();
        await Renew(HeaderSignIns.Resolve(key, request.Session, _scheme), ticket, request.Session, httpContext).ConfigureAwait(false);

        // The cookie handler renews a sliding ticket as the response starts, after the middleware's last commit when the
        // response has no body: the renewal is then written here. A sign-in over a current one commits as a sign-in does.
        await (request.Session.PendingSignIn is not null ? request.CommitSignInAsync(cancellationToken) : request.CommitIfLateAsync()).ConfigureAwait(false);
    }

    /// <summary>
    /// A sliding renewal, or a sign-in over the request's current one (the cookie handler passes the key its authentication
    /// cookie carried). The same user's sign-in that the session still keeps under that key is replaced under it; any other
    /// — another user, or a sign-in after a sign-out in this request — is kept under a new reference, which
    /// <see cref="TicketReferenceFormat"/> puts into the new authentication cookie, so the earlier cookie no longer matches.
    /// </summary>
    private Task Renew(string key, AuthenticationTicket ticket, ServerSideSession session, HttpContext httpContext)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(ticket);
        var userId = UserIdOf(ticket);
        var anotherUser = _binds && !string.Equals(session.UserId, userId, StringComparison.Ordinal);
        if (anotherUser)
        {
            // A sign-in as another user over a current sign-in (or after this request's sign-out unbound the session).
            session.RemoveAllTickets();
            session.BindToUser(userId);
            session.PendingSignIn = SignInFacts.Of(ticket.Principal, _securityStampClaimType);
            session.SigningInPrincipal = ticket.Principal;
        }
        else if (_binds)
        {
            RenewSameUser(key, ticket, session);
        }

        var reference = key;
        if (anotherUser || session.GetTicket(_scheme) is not { } kept || !string.Equals(kept.Id, key, StringComparison.Ordinal))
        {
            // The key names a sign-in that ended in this request (signed out, or replaced by another user's): never reuse it.
            reference = NewReference();
            TicketReferenceFormat.Replace(httpContext, _scheme, key, reference);
            Log.TicketReferenceReplaced(_logger, _scheme, session.Id);
        }

        Keep(session, reference, ticket);
        return Task.CompletedTask;
    }

    public Task<AuthenticationTicket?> RetrieveAsync(string key) => RetrieveAsync(key, CurrentContext(), CancellationToken.None);

    public Task<AuthenticationTicket?> RetrieveAsync(string key, CancellationToken cancellationToken) => RetrieveAsync(key, CurrentContext(), cancellationToken);

    public async Task<AuthenticationTicket?> RetrieveAsync(string key, HttpContext httpContext, CancellationToken cancellationToken)
    {
        // A session that could not be loaded vouches for nobody (the session middleware answers 503).
        var request = await RequestOfAsync(httpContext).ConfigureAwait(false);
        return request is null ? null : await Retrieve(HeaderSignIns.Resolve(key, request.Session, _scheme), request.Session).ConfigureAwait(false);
    }

    /// <summary>The ticket the authentication cookie refers to, if the session still holds it; otherwise the request is anonymous.</summary>
    private Task<AuthenticationTicket?> Retrieve(string key, ServerSideSession session)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (session.GetTicket(_scheme) is not { } kept || !string.Equals(kept.Id, key, StringComparison.Ordinal))
        {
            // Revoked, signed out, expired, cleaned, or a reference from an earlier sign-in.
            Log.TicketNotFound(_logger, _scheme);
            return Task.FromResult<AuthenticationTicket?>(null);
        }

        var ticket = _tickets.Get(kept);
        if (ticket is null)
        {
            try
            {
                ticket = TicketSerializer.Default.Deserialize(_protector.Unprotect(kept.ProtectedTicket));
            }
            catch (CryptographicException ex)
            {
                Log.TicketUnreadable(_logger, _scheme, ex);
                return Task.FromResult<AuthenticationTicket?>(null);
            }

            if (ticket is not null)
            {
                _tickets.Set(kept, ticket);
            }
        }

        if (ticket is not null && _binds && !string.Equals(session.UserId, UserIdOf(ticket), StringComparison.Ordinal))
        {
            // The session was bound to someone else (or unbound) since this sign-in: it no longer vouches for it.
            Log.TicketUserMismatch(_logger, _scheme);
            return Task.FromResult<AuthenticationTicket?>(null);
        }

        return Task.FromResult(ticket);
    }

    public Task RemoveAsync(string key) => RemoveAsync(key, CurrentContext(), CancellationToken.None);

    public Task RemoveAsync(string key, CancellationToken cancellationToken) => RemoveAsync(key, CurrentContext(), cancellationToken);

    public async Task RemoveAsync(string key, HttpContext httpContext, CancellationToken cancellationToken)
    {
        var request = await RequestOfAsync(httpContext).ConfigureAwait(false) ?? throw LoadFailed();
        await Remove(HeaderSignIns.Resolve(key, request.Session, _scheme), request.Session).ConfigureAwait(false);
        await request.CommitIfLateAsync().ConfigureAwait(false);
    }

    /// <summary>A sign-out (or an expired ticket): a binding scheme's ends the session, a helper scheme's removes only its ticket.</summary>
    private Task Remove(string key, ServerSideSession session)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (session.GetTicket(_scheme) is not { } kept || !string.Equals(kept.Id, key, StringComparison.Ordinal))
        {
            return Task.CompletedTask;
        }

        if (_binds)
        {
            session.Abandon();
            session.SignedOut = true;
        }
        else
        {
            session.RemoveTicket(_scheme);
        }

        return Task.CompletedTask;
    }

    /// <summary>
    /// The same user's ticket renewed: a sign-in again over the current one is recorded as a sign-in (new ID, new sign-in
    /// time); a refresh with a new credential stamp records the stamp (new ID, same sign-in time); a sliding renewal
    /// records nothing (see <see cref="TicketSignIns"/>).
    /// </summary>
    private void RenewSameUser(string key, AuthenticationTicket ticket, ServerSideSession session)
    {
        if (TicketSignIns.IsSignInAgain(ticket, session.GetTicket(_scheme), key, _protector))
        {
            session.RegenerateId();
            session.SigningIn = true;
            session.PendingSignIn = SignInFacts.Of(ticket.Principal, _securityStampClaimType);
            session.SigningInPrincipal = ticket.Principal;
            TicketSignIns.SignInAgainRecorded(_logger, _scheme, session.Id);
        }
        else if (TicketSignIns.WithNewStamp(session.SignIn, SignInFacts.Of(ticket.Principal, _securityStampClaimType)) is { } refreshed)
        {
            // The sign-in is written with a renewal only; so the next change of credentials does not take this session for a stale one.
            session.RegenerateId();
            session.PendingSignIn = refreshed;
            TicketSignIns.CredentialStampRefreshed(_logger, _scheme, session.Id);
        }
    }

    private void Keep(ServerSideSession session, string reference, AuthenticationTicket ticket)
    {
        if (_binds)
        {
            TicketSignIns.MarkKept(ticket);
        }

        var keepUntil = ticket.Properties.IsPersistent ? ticket.Properties.ExpiresUtc : null;
        var protectedTicket = _protector.Protect(TicketSerializer.Default.Serialize(ticket));
        var kept = new SessionTicket(reference, keepUntil, protectedTicket);
        session.SetTicket(_scheme, kept);

        // The next request of this sign-in reads it back without unprotecting it.
        _tickets.Set(kept, ticket);
    }

    private static string NewReference()
    {
        Span<byte> bytes = stackalloc byte[16];
        PooledRandom.Fill(bytes);
        return Convert.ToHexStringLower(bytes);
    }

    private string? UserIdOf(AuthenticationTicket ticket) => ticket.Principal.FindFirst(_userIdClaimType)?.Value is { Length: > 0 } id ? id : null;

    private HttpContext CurrentContext() =>
        _httpContextAccessor.HttpContext ?? throw new InvalidOperationException(
            "The server-side ticket store was called outside a request; it keeps sign-ins in the request's server-side session.");

    /// <summary>
    /// The request's session: the one the session middleware loaded, or, when authentication runs before it (WebApplication
    /// inserts <c>UseAuthentication()</c> first when the app does not call it), loaded here for the middleware to take over.
    /// Null when it could not be loaded (logged; the session middleware answers 503).
    /// </summary>
    private static async Task<RequestSession?> RequestOfAsync(HttpContext httpContext)
    {
        ArgumentNullException.ThrowIfNull(httpContext);
        if (RequestSession.Of(httpContext) is { } request)
        {
            return request;
        }

        if (httpContext.RequestServices?.GetService<SessionRuntime>() is not { MiddlewareInPipeline: true } runtime)
        {
            throw new InvalidOperationException(
                "AddTicketStore() keeps the sign-in in the server-side session, but the app's pipeline has no session middleware: " +
                "add app.UseServerSideSessions() (before the endpoints; anywhere relative to UseAuthentication()).");
        }

        request = await RequestSession.LoadAsync(runtime, httpContext, early: true).ConfigureAwait(false);
        httpContext.RequestAborted.ThrowIfCancellationRequested();
        return request;
    }

    // A sign-in or sign-out cannot be kept without the session.
    private static InvalidOperationException LoadFailed() => new(
        "The server-side session of this request could not be loaded (see the LoadFailed log entry), so the sign-in or sign-out cannot be kept.");
}
