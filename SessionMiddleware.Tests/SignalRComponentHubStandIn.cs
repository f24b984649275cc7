using Microsoft.AspNetCore.SignalR;

namespace Microsoft.AspNetCore.Components.Server;

/// <summary>
/// A hub with the full name of Blazor's (internal) <c>ComponentHub</c>: what the SignalR session filter recognises and
/// leaves to the circuit binding (SignalRFilterTests).
/// </summary>
internal sealed class ComponentHub : Hub
{
}
