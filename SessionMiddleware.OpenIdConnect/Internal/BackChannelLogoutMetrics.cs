using System.Diagnostics.Metrics;

namespace SessionMiddleware.OpenIdConnect.Internal;

/// <summary>
/// The counter <c>sessionmiddleware.backchannel_logouts</c> on the core's meter (<see cref="ServerSideSessionDiagnostics.MeterName"/>),
/// tagged <c>outcome</c>: <c>ended</c>, <c>no_session</c> or <c>refused</c>.
/// </summary>
internal sealed class BackChannelLogoutMetrics
{
    public const string InstrumentName = "sessionmiddleware.backchannel_logouts";
    public const string Ended = "ended";
    public const string NoSession = "no_session";
    public const string Refused = "refused";

    private readonly Counter<long> _logouts;

    public BackChannelLogoutMetrics(IMeterFactory? meterFactory)
    {
        var meter = meterFactory?.Create(ServerSideSessionDiagnostics.MeterName) ?? new Meter(ServerSideSessionDiagnostics.MeterName);
        _logouts = meter.CreateCounter<long>(InstrumentName, "{request}", "Back-channel logout requests from identity providers, by outcome.");
    }

    public void Logout(string outcome) => _logouts.Add(1, new KeyValuePair<string, object?>("outcome", outcome));
}
