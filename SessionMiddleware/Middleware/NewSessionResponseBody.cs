using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Http.Features;

namespace SessionMiddleware.Middleware;

/// <summary>
/// The response body of a request whose new session <see cref="ServerSideSessionOptions.NewSessionLimit"/> may refuse.
/// The commit runs as the response starts (<c>Response.OnStarting</c>), when the server already holds the app's first
/// bytes; so before any byte of the app reaches the server, this body starts the response itself, letting the commit
/// decide first. When the commit refuses the new session, the app's body is dropped and the refusal's own text is
/// written in its place; otherwise every call goes straight to the server's body.
/// </summary>
/// <remarks>
/// Bytes the app puts into <see cref="Writer"/> before the response starts (<c>GetMemory</c>/<c>Advance</c> without a
/// flush) are held here until its first flush, or until the app returns (<see cref="FinishAsync"/>).
/// </remarks>
internal sealed class NewSessionResponseBody : IHttpResponseBodyFeature
{
    private readonly IHttpResponseBodyFeature _inner;
    private readonly Func<bool> _responseHasStarted;
    private State _state;
    private bool _starting;
    private bool _refuseAppBody;
    private ReadOnlyMemory<byte> _refusal;
    private GuardStream? _stream;
    private GuardWriter? _writer;
    private byte[]? _held;
    private int _heldLength;
    private bool _completeHeld;

    public NewSessionResponseBody(IHttpResponseBodyFeature inner, Func<bool> responseHasStarted)
    {
        _inner = inner;
        _responseHasStarted = responseHasStarted;
    }

    private enum State
    {
        /// <summary>The app's output waits for the response to start (and the commit to decide).</summary>
        NotStarted,

        /// <summary>The response started with the app's status: everything goes to the server.</summary>
        Passing,

        /// <summary>The new session was refused: the refusal's text was written, the app's output is dropped.</summary>
        Refused,
    }

    /// <summary>The server's body, put back when the middleware returns.</summary>
    public IHttpResponseBodyFeature Inner => _inner;

    /// <inheritdoc/>
    public Stream Stream => _stream ??= new GuardStream(this);

    /// <inheritdoc/>
    public PipeWriter Writer => _writer ??= new GuardWriter(this);

    /// <summary>
    /// Called by the commit when it refuses the new session as the response starts: true when this body started the
    /// response (so no byte of the app reached the server) and will write <paramref name="refusal"/> in place of the app's.
    /// </summary>
    public bool ReplaceAppBody(ReadOnlyMemory<byte> refusal)
    {
        if (!_starting)
        {
            return false;
        }

        _refuseAppBody = true;
        _refusal = refusal;
        return true;
    }

    /// <inheritdoc/>
    public void DisableBuffering() => _inner.DisableBuffering();

    /// <inheritdoc/>
    public Task StartAsync(CancellationToken cancellationToken = default) =>
        _state == State.NotStarted ? StartCoreAsync(cancellationToken).AsTask() : Task.CompletedTask;

    /// <inheritdoc/>
    public async Task SendFileAsync(string path, long offset, long? count, CancellationToken cancellationToken = default)
    {
        if (await PassesAsync(cancellationToken).ConfigureAwait(false))
        {
            await _inner.SendFileAsync(path, offset, count, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public async Task CompleteAsync()
    {
        await PassesAsync(CancellationToken.None).ConfigureAwait(false);
        await _inner.CompleteAsync().ConfigureAwait(false);
    }

    /// <summary>After the app: sends what <see cref="Writer"/> still holds (starting the response, so the commit decides first).</summary>
    public async Task FinishAsync()
    {
        if (_state == State.NotStarted && (_heldLength > 0 || _completeHeld))
        {
            await StartCoreAsync(CancellationToken.None).ConfigureAwait(false);
        }

        if (_completeHeld)
        {
            _completeHeld = false;
            await _inner.Writer.CompleteAsync().ConfigureAwait(false);
        }

        ReleaseHeld();
    }

    private ValueTask<bool> PassesAsync(CancellationToken cancellationToken) => _state switch
    {
        State.Passing => ValueTask.FromResult(true),
        State.Refused => ValueTask.FromResult(false),
        _ => StartCoreAsync(cancellationToken),
    };

    /// <summary>Starts the response (the commit runs in OnStarting), then writes the refusal or what the app's writer holds.</summary>
    private async ValueTask<bool> StartCoreAsync(CancellationToken cancellationToken)
    {
        if (!_responseHasStarted())
        {
            _starting = true;
            try
            {
                await _inner.StartAsync(cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _starting = false;
            }
        }

        if (_state != State.NotStarted)
        {
            // Decided meanwhile (a write of the app that ran while this one awaited the start).
            return _state == State.Passing;
        }

        if (_refuseAppBody)
        {
            _state = State.Refused;
            ReleaseHeld();
            await _inner.Writer.WriteAsync(_refusal, cancellationToken).ConfigureAwait(false);
            return false;
        }

        _state = State.Passing;
        if (_heldLength > 0)
        {
            _inner.Writer.Write(_held.AsSpan(0, _heldLength));
            ReleaseHeld();
        }

        return true;
    }

    private Memory<byte> Hold(int sizeHint)
    {
        sizeHint = Math.Max(sizeHint, 1);
        if (_held is null || _held.Length - _heldLength < sizeHint)
        {
            var larger = ArrayPool<byte>.Shared.Rent(Math.Max(4096, Math.Max(_heldLength + sizeHint, (_held?.Length ?? 0) * 2)));
            if (_held is not null)
            {
                _held.AsSpan(0, _heldLength).CopyTo(larger);
                ArrayPool<byte>.Shared.Return(_held);
            }

            _held = larger;
        }

        return _held.AsMemory(_heldLength);
    }

    private void ReleaseHeld()
    {
        if (_held is not null)
        {
            ArrayPool<byte>.Shared.Return(_held);
            _held = null;
        }

        _heldLength = 0;
    }

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
