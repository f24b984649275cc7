using System.IO.Pipelines;

namespace SessionMiddleware.Middleware;

internal sealed partial class NewSessionResponseBody
{
    /// <summary><see cref="Writer"/>: holds what the app writes before the response starts, until it flushes.</summary>
    private sealed class GuardWriter(NewSessionResponseBody body) : PipeWriter
    {
        private byte[]? _sink;

        private PipeWriter Inner => body._inner.Writer;

        public override bool CanGetUnflushedBytes => body._state != State.Passing || Inner.CanGetUnflushedBytes;

        public override long UnflushedBytes => body._state switch
        {
            State.Passing => Inner.UnflushedBytes,
            State.Refused => 0,
            _ => body._heldLength,
        };

        public override void Advance(int bytes)
        {
            switch (body._state)
            {
                case State.Passing:
                    Inner.Advance(bytes);
                    break;
                case State.NotStarted:
                    body._heldLength += bytes;
                    break;
            }
        }

        public override Memory<byte> GetMemory(int sizeHint = 0) => body._state switch
        {
            State.Passing => Inner.GetMemory(sizeHint),
            State.Refused => Sink(sizeHint),
            _ => body.Hold(sizeHint),
        };

        public override Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => body._state switch
        {
            State.Passing => Inner.FlushAsync(cancellationToken),
            State.Refused => ValueTask.FromResult(new FlushResult(isCanceled: false, isCompleted: false)),
            _ => FlushSlowAsync(cancellationToken),
        };

        public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default) =>
            body._state == State.Passing ? Inner.WriteAsync(source, cancellationToken) : base.WriteAsync(source, cancellationToken);

        public override void CancelPendingFlush() => Inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null)
        {
            if (body._state == State.NotStarted && exception is null)
            {
                // Sent when the app returns (FinishAsync): the start and its commit are asynchronous.
                body._completeHeld = true;
                return;
            }

            Inner.Complete(exception);
        }

        public override async ValueTask CompleteAsync(Exception? exception = null)
        {
            if (exception is null)
            {
                await body.PassesAsync(CancellationToken.None).ConfigureAwait(false);
            }

            await Inner.CompleteAsync(exception).ConfigureAwait(false);
        }

        private async ValueTask<FlushResult> FlushSlowAsync(CancellationToken cancellationToken)
        {
            return await body.PassesAsync(cancellationToken).ConfigureAwait(false)
                ? await Inner.FlushAsync(cancellationToken).ConfigureAwait(false)
                : new FlushResult(isCanceled: false, isCompleted: false);
        }

        // What the app writes after the refusal goes nowhere.
        private Memory<byte> Sink(int sizeHint)
        {
            if (_sink is null || _sink.Length < sizeHint)
            {
                _sink = new byte[Math.Max(4096, sizeHint)];
            }

            return _sink;
        }
    }
}
