using Microsoft.AspNetCore.Components.Server.Circuits;
using Microsoft.Extensions.Logging;

namespace SessionMiddleware.Blazor;

/// <summary>
/// Ties each circuit to its <see cref="CircuitSession"/>: opens it (the end of the session then signs the circuit out and
/// closes it), refuses a reconnection after the end, records the circuit's inbound activity on the session (a touch,
/// throttled by <see cref="ServerSideSessionOptions.TouchInterval"/>) and runs no inbound event after the end.
/// </summary>
internal sealed class SessionCircuitHandler(CircuitSession session, ILogger<SessionCircuitHandler> logger) : CircuitHandler
{
    /// <summary>Early, so that later handlers (the app's) see no event of a circuit whose session ended.</summary>
    public override int Order => -1000;

    /// <inheritdoc/>
    public override Task OnCircuitOpenedAsync(Circuit circuit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(circuit);
        session.Open(circuit.Id, SynchronizationContext.Current);
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public override Task OnConnectionUpAsync(Circuit circuit, CancellationToken cancellationToken)
    {
        if (session.HasEnded)
        {
            BlazorLog.ReconnectRefused(logger, session.CircuitId, session.SessionId);
            throw new CircuitSessionEndedException();
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public override Func<CircuitInboundActivityContext, Task> CreateInboundActivityHandler(Func<CircuitInboundActivityContext, Task> next) =>
        session.Lease is null ? next : context => HandleInboundAsync(context, next);

    private async Task HandleInboundAsync(CircuitInboundActivityContext context, Func<CircuitInboundActivityContext, Task> next)
    {
        if (session.HasEnded)
        {
            BlazorLog.ActivityDropped(logger, session.CircuitId, session.SessionId);
            return;
        }

        // On the captured context: some activity (adding root components) runs on the circuit's dispatcher and must stay there.
        await session.Lease!.RecordActivityAsync().ConfigureAwait(true);
        await next(context).ConfigureAwait(true);
    }
}
