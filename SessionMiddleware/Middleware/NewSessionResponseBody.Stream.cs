namespace SessionMiddleware.Middleware;

internal sealed partial class NewSessionResponseBody
{
    /// <summary><see cref="Stream"/>: each write starts the response first while it has not started.</summary>
    private sealed class GuardStream(NewSessionResponseBody body) : Stream
    {
        private Stream Inner => body._inner.Stream;

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Flush()
        {
            if (body._state == State.Passing)
            {
                Inner.Flush();
            }
        }

        public override Task FlushAsync(CancellationToken cancellationToken) => body._state switch
        {
            State.Passing => Inner.FlushAsync(cancellationToken),
            State.Refused => Task.CompletedTask,
            _ => FlushSlowAsync(cancellationToken),
        };

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            switch (body._state)
            {
                case State.Passing:
                    Inner.Write(buffer);
                    return;
                case State.Refused:
                    return;
            }

            // A synchronous write before the start: the app allowed synchronous I/O (or the server's body refuses it
            // below), so the start waits here as the server's own synchronous write would.
            if (body.PassesAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult())
            {
                Inner.Write(buffer);
            }
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => body._state switch
        {
            State.Passing => Inner.WriteAsync(buffer, cancellationToken),
            State.Refused => ValueTask.CompletedTask,
            _ => WriteSlowAsync(buffer, cancellationToken),
        };

        private async Task FlushSlowAsync(CancellationToken cancellationToken)
        {
            if (await body.PassesAsync(cancellationToken).ConfigureAwait(false))
            {
                await Inner.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        private async ValueTask WriteSlowAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
        {
            if (await body.PassesAsync(cancellationToken).ConfigureAwait(false))
            {
                await Inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
