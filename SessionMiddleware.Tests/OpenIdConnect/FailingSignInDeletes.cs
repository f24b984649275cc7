using System.Reflection;

namespace SessionMiddleware.Tests.OpenIdConnect;

/// <summary>
/// The real store with a switchable fault: while <see cref="Failing"/>, <see cref="IServerSideSessionStore.DeleteBySignInAsync"/>
/// throws (a store outage while a back-channel logout ends sessions); every other call goes to the real store.
/// </summary>
internal class FailingSignInDeletes : DispatchProxy
{
    private IServerSideSessionStore _inner = null!;

    public bool Failing { get; set; }

    public static (IServerSideSessionStore Store, FailingSignInDeletes Fault) Wrap(IServerSideSessionStore inner)
    {
        var store = Create<IServerSideSessionStore, FailingSignInDeletes>();
        var fault = (FailingSignInDeletes)(object)store;
        fault._inner = inner;
        return (store, fault);
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        if (Failing && targetMethod!.Name == nameof(IServerSideSessionStore.DeleteBySignInAsync))
        {
            throw new InvalidOperationException("injected: the store is unreachable");
        }

        try
        {
            return targetMethod!.Invoke(_inner, args);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            throw e.InnerException;
        }
    }
}
