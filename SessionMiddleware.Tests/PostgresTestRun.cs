using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>Stops the shared PostgreSQL test cluster (if a test started one) when the test run ends, whatever the outcome.</summary>
[SetUpFixture]
public sealed class PostgresTestRun
{
    [OneTimeTearDown]
    public Task StopPostgres() => PostgresServer.StopSharedAsync();
}
