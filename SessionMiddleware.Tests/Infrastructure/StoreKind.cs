namespace SessionMiddleware.Tests.Infrastructure;

/// <summary>
/// The store a <see cref="SessionTestHost"/> runs on, so that one middleware-level fixture runs over both:
/// <c>[TestFixture(StoreKind.Sqlite)]</c> and <c>[TestFixture(StoreKind.PostgreSql)]</c> on it.
/// </summary>
public enum StoreKind
{
    /// <summary>A SQLite file in the test's folder (the default store).</summary>
    Sqlite,

    /// <summary>A new database on the run's shared PostgreSQL test cluster (<see cref="PostgresServer.SharedAsync"/>), dropped with the host.</summary>
    PostgreSql,
}
