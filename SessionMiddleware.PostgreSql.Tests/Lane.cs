using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// This project is the PostgreSQL lane: tests that need a PostgreSQL server (a throwaway cluster the run starts). Fixtures whose source is shared with another lane run here only the tests of this lane
/// (<see cref="LaneFixtureAttribute"/>).
/// </summary>
internal static class Lane
{
    public const TestLane Current = TestLane.PostgreSql;
}
