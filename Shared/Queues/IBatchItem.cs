namespace SessionMiddleware.Queues;

/// <summary>One item waiting in a <see cref="BatchLoop{T}"/>: a caller waiting for its answer.</summary>
internal interface IBatchItem
{
    /// <summary>The caller has its answer already (it gave up while waiting): the item joins no batch.</summary>
    bool IsAnswered { get; }

    /// <summary>Answers the caller with <paramref name="exception"/> (no-op when it was answered already).</summary>
    void Fail(Exception exception);
}
