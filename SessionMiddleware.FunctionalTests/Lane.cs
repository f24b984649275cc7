using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// This project is the functional lane: tests that start processes (the demo, the tool, the test host, a browser, dotnet build). Fixtures whose source is shared with another lane run here only the tests of this lane
/// (<see cref="LaneFixtureAttribute"/>).
/// </summary>
internal static class Lane
{
    public const TestLane Current = TestLane.Functional;
}
