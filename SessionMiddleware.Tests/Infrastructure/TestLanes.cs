using System.Reflection;
using NUnit.Framework.Interfaces;
using NUnit.Framework.Internal;

namespace SessionMiddleware.Tests.Infrastructure;

/// <summary>
/// Where a test runs. Each test project is one lane (its <c>Lane.Current</c>) and runs that lane's tests only, so that
/// the in-process lane stays fast and needs no database server and starts no process.
/// </summary>
internal enum TestLane
{
    /// <summary>SessionMiddleware.Tests: the app in the test process (TestServer or Kestrel), SQLite files, a fake clock.</summary>
    InProcess,

    /// <summary>SessionMiddleware.PostgreSql.Tests: tests that need a PostgreSQL server.</summary>
    PostgreSql,

    /// <summary>SessionMiddleware.FunctionalTests: tests that start processes (the demo, the tool, the test host, a browser, dotnet build), and the load tests.</summary>
    Functional,
}

/// <summary>Puts a test (on a method) or every test of a fixture (on a class) in a lane other than the one its store gives it.</summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Method, Inherited = false)]
internal sealed class InLaneAttribute(TestLane lane) : Attribute
{
    public TestLane Lane { get; } = lane;
}

/// <summary>
/// <c>[TestFixture]</c> (with the store as the fixture's argument) for a fixture whose one source file is compiled into
/// more than one lane's project: the fixture is built with the tests of this project's lane only. A fixture with none
/// of them here is an empty suite: no test case, and NUnit runs no one-time set-up for it (it is still built, so that
/// NUnit's default builder does not build the whole class instead). A test's lane is its own
/// <see cref="InLaneAttribute"/>, else its class's, else its store's: PostgreSQL in the PostgreSQL lane, SQLite (or
/// no store) in the in-process lane.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
internal sealed class LaneFixtureAttribute : NUnitAttribute, IFixtureBuilder2
{
    private readonly TestFixtureAttribute _fixture;
    private readonly TestLane _storeLane;

    /// <summary>A fixture without a store argument: in the in-process lane unless <see cref="InLaneAttribute"/> says otherwise.</summary>
    public LaneFixtureAttribute()
    {
        _fixture = new TestFixtureAttribute();
        _storeLane = TestLane.InProcess;
    }

    /// <summary>The fixture over one store of <see cref="SessionTestHost"/>.</summary>
    public LaneFixtureAttribute(StoreKind store)
    {
        _fixture = new TestFixtureAttribute(store);
        _storeLane = store == StoreKind.PostgreSql ? TestLane.PostgreSql : TestLane.InProcess;
    }

    /// <summary>The fixture over one <see cref="StoreBackend"/> kind (<c>sqlite</c>, <c>postgres</c>, <c>postgres-partitioned</c>).</summary>
    public LaneFixtureAttribute(string backend)
    {
        _fixture = new TestFixtureAttribute(backend);
        _storeLane = backend == StoreBackend.Sqlite ? TestLane.InProcess : TestLane.PostgreSql;
    }

    public IEnumerable<TestSuite> BuildFrom(ITypeInfo typeInfo) => _fixture.BuildFrom(typeInfo, new ThisLane(null, _storeLane));

    public IEnumerable<TestSuite> BuildFrom(ITypeInfo typeInfo, IPreFilter filter) => _fixture.BuildFrom(typeInfo, new ThisLane(filter, _storeLane));

    /// <summary>The runner's filter (if any), narrowed to the methods of this project's lane.</summary>
    private sealed class ThisLane(IPreFilter? runner, TestLane storeLane) : IPreFilter
    {
        public bool IsMatch(Type type) => runner?.IsMatch(type) ?? true;

        public bool IsMatch(Type type, MethodInfo method) => (runner?.IsMatch(type, method) ?? true) && LaneOf(type, method) == Lane.Current;

        private TestLane LaneOf(Type type, MethodInfo method) =>
            method.GetCustomAttribute<InLaneAttribute>()?.Lane ?? type.GetCustomAttribute<InLaneAttribute>()?.Lane ?? storeLane;
    }
}
