namespace SessionMiddleware.Blazor;

/// <summary>
/// Closes a circuit whose session ended: raised on the circuit's dispatcher, where Blazor treats it as fatal to the circuit
/// (it tells the browser, then disposes the circuit; there is no other public way to close one from the server), and
/// thrown to refuse the circuit's reconnection.
/// </summary>
internal sealed class CircuitSessionEndedException : Exception
{
    public CircuitSessionEndedException()
        : base("The session of this circuit ended (signed out, revoked or expired): the circuit is closed. Reload the page to continue.")
    {
    }

    public CircuitSessionEndedException(string message)
        : base(message)
    {
    }

    public CircuitSessionEndedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
