using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// This project is the PostgreSQL lane: the tests that need a PostgreSQL server (a throwaway cluster the
/// run starts).
/// Fixtures whose source file other lanes share run here only this lane's tests (<see cref="LaneFixtureAttribute"/>).
/// </summary>
internal static class Lane
{
    public const TestLane Current = TestLane.PostgreSql;
}
