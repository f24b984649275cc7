using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using SessionMiddleware.Cleanup;
using SessionMiddleware.Storage.Sqlite;
using SessionMiddleware.Tests.Infrastructure;

namespace SessionMiddleware.Tests;

/// <summary>The spans of <see cref="ServerSideSessionDiagnostics.ActivitySourceName"/>, children of the request's activity.</summary>
public sealed class TracingTests : TempFolderTest
{
    private readonly ConcurrentBag<Activity> _stopped = [];
    private ActivityListener? _listener;

    [SetUp]
    public void Listen()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name is ServerSideSessionDiagnostics.ActivitySourceName or "Microsoft.AspNetCore",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = _stopped.Add,
        };
        ActivitySource.AddActivityListener(_listener);
    }

    [TearDown]
    public void StopListening() => _listener?.Dispose();

    /// <summary>Sends a request in a trace of its own, and returns the trace's ID.</summary>
    private static async Task<(ActivityTraceId Trace, HttpResponseMessage Response)> SendTracedAsync(HttpClient client, string path)
    {
        var trace = ActivityTraceId.CreateRandom();
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.TryAddWithoutValidation("traceparent", $"00-{trace.ToHexString()}-{ActivitySpanId.CreateRandom().ToHexString()}-01");
        return (trace, await client.SendAsync(request));
    }

    private List<Activity> Spans(ActivityTraceId trace) =>
        _stopped.Where(a => a.TraceId == trace && a.Source.Name == ServerSideSessionDiagnostics.ActivitySourceName).ToList();

    private Activity RequestActivity(ActivityTraceId trace) =>
        _stopped.Single(a => a.TraceId == trace && a.Source.Name == "Microsoft.AspNetCore");

    [Test]
    public async Task WriteThenRenew_SpansForLoadCommitAndRenew_ChildrenOfTheRequest_WithoutIds()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path);
        var browser = host.CreateBrowser();

        var (created, r1) = await SendTracedAsync(browser, "/set?key=a&value=1");
        r1.Dispose();
        var (renewed, r2) = await SendTracedAsync(browser, "/regenerate");
        r2.Dispose();
        var sessionId = await browser.GetTextAsync("/id");

        var createSpans = Spans(created);
        var renewSpans = Spans(renewed);
        var renewRequest = RequestActivity(renewed);
        var commit = renewSpans.Single(a => a.OperationName == "SessionMiddleware.commit");
        var renew = renewSpans.Single(a => a.OperationName == "SessionMiddleware.renew");
        var load = renewSpans.Single(a => a.OperationName == "SessionMiddleware.load");
        Assert.Multiple(() =>
        {
            Assert.That(createSpans.Select(a => a.OperationName), Is.EqualTo(new[] { "SessionMiddleware.commit" }), "no cookie: nothing to load");
            Assert.That(createSpans[0].GetTagItem("sessionmiddleware.commit.outcome"), Is.EqualTo("committed"));
            Assert.That(createSpans[0].ParentSpanId, Is.EqualTo(RequestActivity(created).SpanId));
            Assert.That(load.ParentSpanId, Is.EqualTo(renewRequest.SpanId));
            Assert.That(commit.ParentSpanId, Is.EqualTo(renewRequest.SpanId));
            Assert.That(renew.ParentSpanId, Is.EqualTo(commit.SpanId));
            Assert.That(commit.GetTagItem("sessionmiddleware.commit.outcome"), Is.EqualTo("committed"));
            Assert.That(renew.GetTagItem("sessionmiddleware.commit.outcome"), Is.Null);
            Assert.That(load.GetTagItem("db.system.name"), Is.EqualTo("sqlite"));
            Assert.That(load.GetTagItem("db.operation.name"), Is.EqualTo("load"));
            Assert.That(
                createSpans.Concat(renewSpans).SelectMany(a => a.TagObjects).Select(t => t.Value?.ToString()),
                Has.None.Contains(sessionId),
                "no session ID in any attribute");
        });
    }

    [Test]
    public async Task ReadOnlyRequest_HasOnlyTheLoadSpan()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path);
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");

        var (trace, response) = await SendTracedAsync(browser, "/get?key=a");
        response.Dispose();

        Assert.That(Spans(trace).Select(a => a.OperationName), Is.EqualTo(new[] { "SessionMiddleware.load" }));
    }

    [Test]
    public async Task FailedCommit_SpanHasErrorStatusAndOutcomeFailed()
    {
        FaultyStore store = null!;
        await using var host = await SessionTestHost.StartAsync(Folder.Path, services: s => s.UseStore(sp =>
            store = new FaultyStore(ActivatorUtilities.CreateInstance<SqliteSessionStore>(sp))));
        var browser = host.CreateBrowser();
        await browser.GetTextAsync("/set?key=a&value=1");
        store.OnUpdate = () => new TimeoutException("update");

        var (trace, response) = await SendTracedAsync(browser, "/set?key=a&value=2");
        using (response)
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.InternalServerError));
        }

        var commit = Spans(trace).Single(a => a.OperationName == "SessionMiddleware.commit");
        Assert.Multiple(() =>
        {
            Assert.That(commit.Status, Is.EqualTo(ActivityStatusCode.Error));
            Assert.That(commit.GetTagItem("error.type"), Is.EqualTo("System.TimeoutException"));
            Assert.That(commit.GetTagItem("sessionmiddleware.commit.outcome"), Is.EqualTo("failed"));
        });
    }

    [Test]
    public async Task CleanupRun_HasASpanWithTheRowsDeleted()
    {
        await using var host = await SessionTestHost.StartAsync(Folder.Path, o => o.CleanupInterval = TimeSpan.FromDays(1));
        await host.CreateBrowser().GetTextAsync("/set?key=a&value=1");
        host.Time.Advance(TimeSpan.FromHours(1));
        var cleaner = host.Services.GetServices<IHostedService>().OfType<SessionCleanupService>().Single();

        using (var run = new Activity("cleanup-test").Start())
        {
            await cleaner.RunOnceAsync(CancellationToken.None);
            var span = _stopped.Single(a => a.TraceId == run.TraceId && a.OperationName == "SessionMiddleware.cleanup");
            Assert.Multiple(() =>
            {
                Assert.That(span.GetTagItem("sessionmiddleware.cleanup.rows_deleted"), Is.EqualTo(1));
                Assert.That(span.GetTagItem("db.operation.name"), Is.EqualTo("cleanup"));
                Assert.That(span.Status, Is.Not.EqualTo(ActivityStatusCode.Error));
            });
        }
    }
}
