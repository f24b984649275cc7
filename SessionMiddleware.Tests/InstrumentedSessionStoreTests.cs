using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using SessionMiddleware.Diagnostics;

namespace SessionMiddleware.Tests;

/// <summary>
/// The decorator that times the store calls of the request path and the cleaner: which calls it times and under which
/// names, and that without a listener it hands back the store's own task (nothing allocated around the call).
/// </summary>
public sealed class InstrumentedSessionStoreTests
{
    private static readonly byte[] Key = new byte[32];
    private static readonly NewSession Row = new(Key, [1], null, null, null);
    private static readonly SessionLifetime Expired = new(Key, null, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch);

    private ServiceProvider _services = null!;

    [SetUp]
    public void SetUp() => _services = new ServiceCollection().AddMetrics().BuildServiceProvider();

    [TearDown]
    public void TearDown() => _services.Dispose();

    private SessionMetrics Metrics(SessionStoreDescription? description = null) =>
        new(_services.GetRequiredService<IMeterFactory>(), description);

    [Test]
    public void WithoutAListener_EachCall_IsTheStoresOwnTask()
    {
        var store = new FixedStore();
        var instrumented = new InstrumentedSessionStore(store, Metrics());

        Assert.Multiple(() =>
        {
            Assert.That(instrumented.LoadAsync(Key), Is.SameAs(store.Load));
            Assert.That(instrumented.CreateAsync(Row), Is.SameAs(store.Create));
            Assert.That(instrumented.UpdateAsync(Key, [1], 1), Is.SameAs(store.Update));
            Assert.That(instrumented.TouchAsync(Key), Is.SameAs(store.Touch));
            Assert.That(instrumented.RenewAsync(Key, 1, Row), Is.SameAs(store.Update));
            Assert.That(instrumented.DeleteAsync(Key), Is.SameAs(store.Delete));
            Assert.That(instrumented.ListExpiredAsync(null, 10), Is.SameAs(store.Lifetimes));
            Assert.That(instrumented.DeleteExpiredAsync([Key]), Is.SameAs(store.Keys));
        });
    }

    [Test]
    public async Task WithAListener_TimesTheRequestAndCleanerCalls_UnderTheirOperationNames_AndTheStoresDbSystem()
    {
        var metrics = Metrics(new SessionStoreDescription("mysql", null));
        using var durations = new MetricCollector<double>(_services.GetRequiredService<IMeterFactory>(), ServerSideSessionDiagnostics.MeterName, ServerSideSessionDiagnostics.StoreOperationDuration);
        var instrumented = new InstrumentedSessionStore(new FixedStore(), metrics);

        await instrumented.LoadAsync(Key);
        await instrumented.CreateAsync(Row);
        await instrumented.UpdateAsync(Key, [1], 1);
        await instrumented.TouchAsync(Key);
        await instrumented.RenewAsync(Key, 1, Row);
        await instrumented.DeleteAsync(Key);
        await instrumented.ListExpiredAsync(null, 10);
        await instrumented.DeleteExpiredAsync([Key]);
        await instrumented.CountAsync(SessionFilter.All);
        await instrumented.QueryAsync(SessionFilter.All, null, 10);
        await instrumented.ListByUserAsync("u", 10);
        await instrumented.DeleteByUserAsync("u", null, 10);
        await instrumented.MigrateAsync();
        await instrumented.CheckSchemaAsync();

        var measurements = durations.GetMeasurementSnapshot();
        Assert.Multiple(() =>
        {
            Assert.That(
                measurements.Select(m => m.Tags["db.operation.name"]),
                Is.EqualTo(new[] { "load", "create", "update", "touch", "renew", "delete", "cleanup", "cleanup" }),
                "the session manager's and the migration's calls are not timed");
            Assert.That(measurements.Select(m => m.Tags["db.system.name"]), Has.All.EqualTo("mysql"));
            Assert.That(measurements.Select(m => m.Value), Has.All.GreaterThanOrEqualTo(0));
        });
    }

    [Test]
    public void AFailedCall_IsTimedWithItsErrorType_AndRethrown()
    {
        var metrics = Metrics();
        using var durations = new MetricCollector<double>(_services.GetRequiredService<IMeterFactory>(), ServerSideSessionDiagnostics.MeterName, ServerSideSessionDiagnostics.StoreOperationDuration);
        var store = new FixedStore { LoadError = new TimeoutException("slow") };
        var instrumented = new InstrumentedSessionStore(store, metrics);

        Assert.ThrowsAsync<TimeoutException>(() => instrumented.LoadAsync(Key));

        var measurement = durations.GetMeasurementSnapshot().Single();
        Assert.Multiple(() =>
        {
            Assert.That(measurement.Tags["error.type"], Is.EqualTo("System.TimeoutException"));
            Assert.That(measurement.Tags["db.system.name"], Is.EqualTo("other_sql"), "a store that says nothing");
        });
    }

    /// <summary>A store whose calls complete at once with the same task each time.</summary>
    private sealed class FixedStore : IServerSideSessionStore
    {
        public readonly Task<StoredSession?> Load = Task.FromResult<StoredSession?>(null);
        public readonly Task<StoredSession> Create = Task.FromResult(new StoredSession(Key, [1], 1, null, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch));
        public readonly Task<SessionUpdateResult> Update = Task.FromResult(new SessionUpdateResult(SessionUpdateStatus.Committed, 2));
        public readonly Task<bool> Touch = Task.FromResult(true);
        public readonly Task<SessionLifetime?> Delete = Task.FromResult<SessionLifetime?>(Expired);
        public readonly Task<IReadOnlyList<SessionLifetime>> Lifetimes = Task.FromResult<IReadOnlyList<SessionLifetime>>([Expired]);
        public readonly Task<IReadOnlyList<byte[]>> Keys = Task.FromResult<IReadOnlyList<byte[]>>([Key]);

        public Exception? LoadError { get; init; }

        public Task MigrateAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

        public Task CheckSchemaAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

        public Task<StoredSession?> LoadAsync(byte[] key, CancellationToken cancellationToken = default) =>
            LoadError is null ? Load : Task.FromException<StoredSession?>(LoadError);

        public Task<StoredSession> CreateAsync(NewSession session, CancellationToken cancellationToken = default) => Create;

        public Task<SessionUpdateResult> UpdateAsync(byte[] key, byte[] data, long expectedVersion, DateTimeOffset? expiresAt = null, CancellationToken cancellationToken = default) => Update;

        public Task<bool> TouchAsync(byte[] key, DateTimeOffset? expiresAt = null, CancellationToken cancellationToken = default) => Touch;

        public Task<SessionUpdateResult> RenewAsync(byte[] oldKey, long expectedVersion, NewSession renewed, CancellationToken cancellationToken = default) => Update;

        public Task<IReadOnlyList<SessionInfo>> ListByUserAsync(string userId, int limit, CancellationToken cancellationToken = default) =>
            Task.FromResult<IReadOnlyList<SessionInfo>>([]);

        public Task<IReadOnlyList<SessionInfo>> QueryAsync(SessionFilter filter, SessionCursor? after, int limit, CancellationToken cancellationToken = default) =>
            Task.FromResult<IReadOnlyList<SessionInfo>>([]);

        public Task<long> CountAsync(SessionFilter filter, CancellationToken cancellationToken = default) => Task.FromResult(0L);

        public Task<IReadOnlyList<SessionLifetime>> DeleteByUserAsync(string userId, byte[]? exceptKey, int maxRows, CancellationToken cancellationToken = default) => Lifetimes;

        public Task<IReadOnlyList<SessionLifetime>> DeleteBySignInAsync(SessionSignInFilter filter, byte[]? exceptKey, int maxRows, CancellationToken cancellationToken = default) => Lifetimes;

        public Task<SessionLifetime?> DeleteAsync(byte[] key, CancellationToken cancellationToken = default) => Delete;

        public Task<IReadOnlyList<SessionLifetime>> ListExpiredAsync(SessionLifetime? after, int maxRows, CancellationToken cancellationToken = default) => Lifetimes;

        public Task<IReadOnlyList<byte[]>> DeleteExpiredAsync(IReadOnlyList<byte[]> keys, CancellationToken cancellationToken = default) => Keys;
    }
}
