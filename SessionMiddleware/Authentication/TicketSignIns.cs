using System.Security.Cryptography;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Logging;
using SessionMiddleware.Session;

namespace SessionMiddleware.Authentication;

/// <summary>
/// Tells the ticket store's renewals apart. The cookie handler calls <c>RenewAsync</c> both for a sliding renewal and for
/// a sign-in over the request's current one (the user signs in again while signed in, e.g. after a recent sign-in
/// challenge); Identity's <c>RefreshSignInAsync</c> is such a sign-in call too, with the current sign-in's properties.
/// The store marks the properties of every ticket it keeps: a sliding renewal (the handler copies the properties) and a
/// refresh (it passes them on) carry the mark, a new sign-in (new properties) does not. (Log events 2493–2494 of the
/// sign-in policies' 2490–2499.)
/// </summary>
internal static partial class TicketSignIns
{
    /// <summary>The <see cref="AuthenticationProperties.Items"/> key of the mark (kept server-side, in the session row).</summary>
    internal const string KeptMarker = "SessionMiddleware.Kept";

    /// <summary>Marks a ticket the store keeps.</summary>
    public static void MarkKept(AuthenticationTicket ticket) => ticket.Properties.Items[KeptMarker] = "1";

    /// <summary>
    /// Whether <paramref name="ticket"/>, renewed over the sign-in the session keeps under the cookie's key, is a new sign-in.
    /// A sign-in kept before tickets were marked is not taken for one (its sliding renewal would pass for a sign-in): its
    /// renewal marks it, and the next sign-in counts.
    /// </summary>
    public static bool IsSignInAgain(AuthenticationTicket ticket, SessionTicket? kept, string key, IDataProtector protector)
    {
        if (IsMarked(ticket.Properties) || kept is null || !string.Equals(kept.Id, key, StringComparison.Ordinal))
        {
            return false;
        }

        try
        {
            return TicketSerializer.Default.Deserialize(protector.Unprotect(kept.ProtectedTicket)) is { } keptTicket && IsMarked(keptTicket.Properties);
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    /// <summary>
    /// The sign-in to record when a renewal carries another credential stamp than the session recorded (Identity's
    /// <c>RefreshSignInAsync</c> after a change of password): the new facts at the recorded sign-in time, which a refresh
    /// does not move. Null when there is nothing to record.
    /// </summary>
    public static SessionSignIn? WithNewStamp(SessionSignIn? recorded, SessionSignIn facts) =>
        recorded is { CredentialStamp: { } before } && facts.CredentialStamp is { } after && !string.Equals(before, after, StringComparison.Ordinal)
            ? facts with { At = recorded.At }
            : null;

    private static bool IsMarked(AuthenticationProperties properties) => properties.Items.ContainsKey(KeptMarker);

    [LoggerMessage(2493, LogLevel.Debug, "Scheme {Scheme} signed the same user in again over the current sign-in of session {SessionId}: recorded as a new sign-in.", EventName = "SignInAgainRecorded")]
    public static partial void SignInAgainRecorded(ILogger logger, string scheme, string sessionId);

    [LoggerMessage(2494, LogLevel.Debug, "Scheme {Scheme} refreshed the sign-in of session {SessionId} with a new credential stamp: recorded, sign-in time kept.", EventName = "CredentialStampRefreshed")]
    public static partial void CredentialStampRefreshed(ILogger logger, string scheme, string sessionId);
}
