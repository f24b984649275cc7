using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// This project is the in-process lane: the app in the test process (TestServer or Kestrel), SQLite files, a fake
/// clock; no database server, and no process of an app, the tool or a browser (<c>mount</c> aside, for a full or a
/// read-only disk).
/// Fixtures whose source file other lanes share run here only this lane's tests (<see cref="LaneFixtureAttribute"/>).
/// </summary>
internal static class Lane
{
    public const TestLane Current = TestLane.InProcess;
}
