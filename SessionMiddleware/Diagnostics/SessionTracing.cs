using System.Diagnostics;

namespace SessionMiddleware.Diagnostics;

/// <summary>
/// The spans of the <see cref="ServerSideSessionDiagnostics.ActivitySourceName"/> source: load, commit (with its
/// outcome), renew and each cleanup run, children of the current activity (the request's). Kinds and outcomes only,
/// never an ID. Starting one costs nothing when no listener samples the source.
/// </summary>
internal static class SessionTracing
{
    public const string OutcomeTag = "sessionmiddleware.commit.outcome";

    public const string RowsDeletedTag = "sessionmiddleware.cleanup.rows_deleted";

    private static readonly ActivitySource Source = new(ServerSideSessionDiagnostics.ActivitySourceName);

    /// <summary>Starts the span of <paramref name="operation"/>, or returns null when nobody listens.</summary>
    public static Activity? Start(string operation, string dbSystemName)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        var activity = Source.StartActivity("SessionMiddleware." + operation, ActivityKind.Internal);
        activity?.SetTag("db.system.name", dbSystemName);
        activity?.SetTag("db.operation.name", operation);
        return activity;
    }

    /// <summary>Whether <paramref name="activity"/> is a span of this library's source.</summary>
    public static bool IsOurs(Activity? activity) => activity is not null && ReferenceEquals(activity.Source, Source);

    /// <summary>Records the commit's outcome on the current commit span, if any.</summary>
    public static void CommitOutcome(string outcome)
    {
        if (Activity.Current is { } current && IsOurs(current))
        {
            current.SetTag(OutcomeTag, outcome);
        }
    }

    /// <summary>Marks a span failed, with OpenTelemetry's <c>error.type</c>.</summary>
    public static void Failed(Activity? activity, Exception error, string? outcome = null)
    {
        if (activity is null)
        {
            return;
        }

        var type = SessionMetrics.ErrorType(error);
        activity.SetTag("error.type", type);
        if (outcome is not null)
        {
            activity.SetTag(OutcomeTag, outcome);
        }

        activity.SetStatus(ActivityStatusCode.Error, type);
    }
}
