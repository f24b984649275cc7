using System.Diagnostics;
using System.Diagnostics.Metrics;
using SessionMiddleware;

namespace SessionMiddleware.Benchmarks.Server;

/// <summary>
/// For <c>ours-sqlite-listened</c>: a <see cref="MeterListener"/> on every instrument of the library's meter and an
/// <see cref="ActivityListener"/> that records every span of its source, as an OpenTelemetry SDK would attach them,
/// with callbacks that only count. What it measures is the library's instrumentation when someone listens (the
/// measurements and spans made), not an exporter's own cost.
/// </summary>
internal sealed class InstrumentationListeners : IDisposable
{
    private readonly MeterListener _meters = new();
    private readonly ActivityListener _spans;
    private long _measurements;
    private long _spansStopped;

    public InstrumentationListeners()
    {
        _meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == ServerSideSessionDiagnostics.MeterName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _meters.SetMeasurementEventCallback<long>((_, _, _, _) => Interlocked.Increment(ref _measurements));
        _meters.SetMeasurementEventCallback<int>((_, _, _, _) => Interlocked.Increment(ref _measurements));
        _meters.SetMeasurementEventCallback<double>((_, _, _, _) => Interlocked.Increment(ref _measurements));
        _meters.Start();

        _spans = new ActivityListener
        {
            ShouldListenTo = source => source.Name == ServerSideSessionDiagnostics.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = _ => Interlocked.Increment(ref _spansStopped),
        };
        ActivitySource.AddActivityListener(_spans);
    }

    /// <summary>Measurements and spans seen so far (GET /bench/listened shows them, to check that the listeners hear something).</summary>
    public string Summary => $"measurements {Interlocked.Read(ref _measurements)}, spans {Interlocked.Read(ref _spansStopped)}";

    public void Dispose()
    {
        _meters.Dispose();
        _spans.Dispose();
    }
}
