using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// This project is the functional lane: the tests that start processes (the demo, the tool, the test host, a
/// browser, dotnet build), and the load tests that keep the machine busy for tens of seconds (hundreds of thousands of
/// rows revoked or cleaned while other clients write).
/// Fixtures whose source file other lanes share run here only this lane's tests (<see cref="LaneFixtureAttribute"/>).
/// </summary>
internal static class Lane
{
    public const TestLane Current = TestLane.Functional;
}
