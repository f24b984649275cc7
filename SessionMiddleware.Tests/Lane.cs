using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>
/// This project is the in-process lane: the app in the test process (TestServer or Kestrel), SQLite files, a fake clock; no database server, no child process. Fixtures whose source is shared with another lane run here only the tests of this lane
/// (<see cref="LaneFixtureAttribute"/>).
/// </summary>
internal static class Lane
{
    public const TestLane Current = TestLane.InProcess;
}
