using System.Threading.Channels;
using SessionMiddleware.Queues;

namespace SessionMiddleware.Tests;

/// <summary>
/// The batching loop the store queues share (Shared/Queues/BatchLoop.cs), on its own: a failed batch fails every item of
/// it and the loop goes on; stopping waits for the batch in progress, never disposes the token source under the loop,
/// and answers every item it does not run.
/// </summary>
public sealed class BatchLoopTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Test]
    public async Task ABatchWhoseRunThrows_FailsEveryItemOfIt_AndTheLoopGoesOnWithTheNext()
    {
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var failure = new InvalidOperationException("the batch failed");
        var batches = new List<int[]>();
        await using var loop = new TestLoop(async (batch, _) =>
        {
            batches.Add([.. batch.Select(i => i.Value)]);
            if (batches.Count == 1)
            {
                running.SetResult();
                await release.Task;   // the next items gather into one batch meanwhile
            }
            else if (batches.Count == 2)
            {
                throw failure;
            }

            foreach (var item in batch)
            {
                item.Complete();
            }
        });

        var first = loop.Add(1);
        await running.Task.WaitAsync(Wait);
        var failed = new[] { loop.Add(2), loop.Add(3), loop.Add(4) };
        release.SetResult();
        Assert.That(await first.WaitAsync(Wait), Is.EqualTo(1));

        foreach (var item in failed)
        {
            var error = Assert.ThrowsAsync<InvalidOperationException>(async () => await item.WaitAsync(Wait));
            Assert.That(error, Is.SameAs(failure), "every item of the failed batch gets its exception");
        }

        Assert.That(await loop.Add(5).WaitAsync(Wait), Is.EqualTo(5), "the loop runs the next batch");
        Assert.That(batches.Select(b => string.Join(",", b)), Is.EqualTo(new[] { "1", "2,3,4", "5" }));
        Assert.That(loop.Completion.IsCompleted, Is.False);
    }

    [Test]
    public async Task StopWhileABatchOutlastsTheDrainTimeout_CancelsIt_AndWaitsForTheLoopToEnd()
    {
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var ended = false;
        var loop = new TestLoop(
            async (batch, _) =>
            {
                running.SetResult();
                await Task.Delay(300, CancellationToken.None);   // deaf to the cancellation for a while, as a statement the server is slow to cancel
                ended = true;
                foreach (var item in batch)
                {
                    item.Complete();
                }
            },
            drainTimeout: TimeSpan.FromMilliseconds(50));
        var held = loop.Add(1);
        await running.Task.WaitAsync(Wait);

        await loop.DisposeAsync();

        Assert.Multiple(() =>
        {
            Assert.That(ended, Is.True, "DisposeAsync returns once the batch in progress ended");
            Assert.That(loop.Completion.Status, Is.EqualTo(TaskStatus.RanToCompletion));
            Assert.That(held.Status, Is.EqualTo(TaskStatus.RanToCompletion));
        });
    }

    [Test]
    public async Task StopWhileABatchOutlastsTheCancelWait_NeverDisposesTheTokenSourceUnderTheLoop()
    {
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var loop = new TestLoop(
            async (batch, stopping) =>
            {
                running.SetResult();
                await release.Task;
                // Reads the token's source (as CancellationTokenSource.Token would): ObjectDisposedException once it is disposed.
                _ = stopping.WaitHandle;
                foreach (var item in batch)
                {
                    item.Complete();
                }
            },
            drainTimeout: TimeSpan.FromMilliseconds(50),
            cancelTimeout: TimeSpan.FromMilliseconds(50));
        var held = loop.Add(1);
        await running.Task.WaitAsync(Wait);
        var queued = loop.Add(2);

        Assert.That(async () => await loop.DisposeAsync(), Throws.Nothing, "gives up waiting for the held batch");
        release.SetResult();

        Assert.That(async () => await loop.Completion.WaitAsync(Wait), Throws.Nothing, "no ObjectDisposedException from the loop");
        Assert.That(await held.WaitAsync(Wait), Is.EqualTo(1), "the held batch ends normally");
        var error = Assert.ThrowsAsync<ObjectDisposedException>(async () => await queued.WaitAsync(Wait), "an item queued behind it is never run, and never left waiting");
        Assert.That(error!.Message, Does.Contain("shutting down"));
    }

    [Test]
    public async Task AnItemWrittenAfterStop_FailsAtOnce_WithAClearError()
    {
        var loop = new TestLoop((batch, _) =>
        {
            foreach (var item in batch)
            {
                item.Complete();
            }

            return Task.CompletedTask;
        });
        Assert.That(await loop.Add(1).WaitAsync(Wait), Is.EqualTo(1));
        await loop.DisposeAsync();

        var error = Assert.Throws<ObjectDisposedException>(() => loop.Add(2));
        Assert.That(error!.Message, Does.Contain("The session store is shutting down."));
        Assert.That(loop.Completion.Status, Is.EqualTo(TaskStatus.RanToCompletion));
    }

    private sealed class TestLoop : BatchLoop<Item>
    {
        private readonly Func<List<Item>, CancellationToken, Task> _run;

        public TestLoop(Func<List<Item>, CancellationToken, Task> run, TimeSpan? drainTimeout = null, TimeSpan? cancelTimeout = null)
            : base(Channel.CreateUnbounded<Item>(new UnboundedChannelOptions { SingleReader = true }), maxBatch: 8)
        {
            _run = run;
            DrainTimeout = drainTimeout ?? BatchLoop.DrainTimeout;
            CancelTimeout = cancelTimeout ?? BatchLoop.CancelTimeout;
            Start();
        }

        public Task<int> Add(int value)
        {
            var item = new Item(value);
            if (!TryWrite(item))
            {
                throw ShuttingDown();
            }

            return item.Task;
        }

        protected override Task RunBatchAsync(List<Item> batch, CancellationToken stopping) => _run(batch, stopping);
    }

    private sealed class Item(int value) : IBatchItem
    {
        private readonly TaskCompletionSource<int> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Value => value;

        public Task<int> Task => _completion.Task;

        public bool IsAnswered => _completion.Task.IsCompleted;

        public void Complete() => _completion.TrySetResult(value);

        public void Fail(Exception exception) => _completion.TrySetException(exception);
    }
}
