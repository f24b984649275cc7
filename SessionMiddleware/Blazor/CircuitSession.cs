using System.Security.Claims;
using Microsoft.AspNetCore.Components.Authorization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SessionMiddleware.Live;

namespace SessionMiddleware.Blazor;

/// <summary>
/// A circuit's hold on the session of the request that opened it (scoped: one per circuit). When the session ends, the
/// circuit's <see cref="AuthenticationStateProvider"/> is told the user is anonymous (so <c>AuthorizeView</c> and
/// <c>[Authorize]</c> components render signed out), then the circuit is closed. Disposed with the circuit's scope, which
/// releases the hold.
/// </summary>
internal sealed class CircuitSession : IDisposable
{
    private static readonly AuthenticationState Anonymous = new(new ClaimsPrincipal(new ClaimsIdentity()));

    private readonly LiveSessionLease? _lease;
    private readonly IServiceProvider _services;
    private readonly ILogger<CircuitSession> _logger;
    private SynchronizationContext? _dispatcher;
    private CancellationTokenRegistration _registration;
    private string _circuitId = "(not opened)";
    private int _ended;

    public CircuitSession(IServiceProvider services, ILogger<CircuitSession> logger)
    {
        _services = services;
        _logger = logger;
        // Created in the circuit's scope during a call of its hub connection (see CircuitSessionHubFilter).
        _lease = CircuitSessionSlot.Current?.Claim();
    }

    /// <summary>The session held, or <see langword="null"/> for a circuit opened without a stored session.</summary>
    public LiveSessionLease? Lease => _lease;

    /// <summary>Whether the circuit's session has ended: the circuit no longer acts for its user.</summary>
    public bool HasEnded => _lease?.HasEnded == true;

    /// <summary>The session's public ID, for logs.</summary>
    public string SessionId => _lease?.PublicId ?? "(none)";

    /// <summary>The circuit's ID, for logs.</summary>
    public string CircuitId => _circuitId;

    /// <summary>
    /// The circuit opened: from now on the end of its session signs the circuit out and closes it, through
    /// <paramref name="dispatcher"/> (the circuit's synchronization context, current when its handlers run).
    /// </summary>
    public void Open(string circuitId, SynchronizationContext? dispatcher)
    {
        _circuitId = circuitId;
        if (_lease is null)
        {
            BlazorLog.WithoutSession(_logger, circuitId);
            return;
        }

        _dispatcher = dispatcher;
        BlazorLog.Bound(_logger, circuitId, _lease.PublicId);
        // Runs at once when the session has ended already.
        _registration = _lease.Ended.UnsafeRegister(static state => ((CircuitSession)state!).OnSessionEnded(), this);
    }

    private void OnSessionEnded()
    {
        if (Interlocked.Exchange(ref _ended, 1) != 0)
        {
            return;
        }

        BlazorLog.SessionEnded(_logger, SessionId, _circuitId);
        if (_dispatcher is not { } dispatcher)
        {
            SignOut();
            return;
        }

        // Sign out on the circuit's dispatcher; the close is queued behind the renders that sign-out queues, so the browser
        // receives the signed-out page before the circuit ends.
        dispatcher.Post(
            static state =>
            {
                var self = (CircuitSession)state!;
                self.SignOut();
                self._dispatcher!.Post(static _ => throw new CircuitSessionEndedException(), null);
            },
            this);
    }

    /// <summary>Tells the circuit's authentication state provider that the user is anonymous now.</summary>
    internal void SignOut()
    {
        var provider = _services.GetService<AuthenticationStateProvider>();
        if (provider is IHostEnvironmentAuthenticationStateProvider settable)
        {
            settable.SetAuthenticationState(Task.FromResult(Anonymous));
        }
        else if (provider is not null)
        {
            BlazorLog.StateNotSettable(_logger, provider.GetType().FullName ?? provider.GetType().Name, SessionId, _circuitId);
        }
    }

    public void Dispose()
    {
        _registration.Dispose();
        if (_lease is not null)
        {
            BlazorLog.Released(_logger, _circuitId, _lease.PublicId);
            _lease.Dispose();
        }
    }
}
