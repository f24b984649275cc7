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
internal sealed partial class NewSessionResponseBody : IHttpResponseBodyFeature
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
}
