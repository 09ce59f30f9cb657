"""Keeps what native code writes to file descriptors 1 and 2 off the console. Plain Python.

TensorFlow, XLA and LiteRT write from C++ straight to the process's descriptors, some of it
before their logging is configured (``TF_CPP_MIN_LOG_LEVEL`` does not reach "All log messages
before absl::InitializeLog()"; LiteRT's "Created TensorFlow Lite XNNPACK delegate" has no
switch). No library offers a way to silence these, so this is the one hand-written way
the project does it::

    with captured_output((1, 2)) as capture:   # fds 1 and 2 -> one temporary file
        ...                                    # native chatter lands in the file
    capture.text                               # what it received, once the block has ended

The descriptors are restored on every path (an exception, KeyboardInterrupt); Python's own
buffered ``sys.stdout`` / ``sys.stderr`` are flushed on the way in and out, so what Python
wrote before the block shows where it was written and what it wrote during the block goes
where the descriptor pointed then. ``python_to_console``: Python's own stream of a captured
descriptor (the tool's messages, progress bars) is pointed at a copy of the real descriptor
for the block, so only native text is captured. If a descriptor cannot be duplicated (a
daemon without one), the block runs uncaptured. Whether and how to replay captured text
after a failure is the caller's choice (``keyboard_lm.quiet``, ``phone.runtime``).
``verbose()``: the user asked to see the libraries' own messages (``kblm --verbose``).
"""
import contextlib
import io
import os
import sys
import tempfile

STREAMS = {1: "stdout", 2: "stderr"}  # the Python stream that writes to each descriptor


def verbose():
    """True if the user asked for the native libraries' own messages (KBLM_VERBOSE=1, set by
    ``kblm --verbose``): then nothing should be captured."""
    return os.environ.get("KBLM_VERBOSE") == "1"


class Capture:
    """What the captured descriptors received: ``text`` (str, undecodable bytes replaced),
    set when the block ends; ``active`` False if nothing could be captured."""

    def __init__(self, fds):
        self.fds = tuple(fds)
        self.text = ""
        self.active = False


def _flush_python_streams(fds):
    for fd in fds:
        stream = getattr(sys, STREAMS.get(fd, ""), None)
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.flush()


def _writes_to(stream, fd):
    """True if the Python ``stream`` writes to descriptor ``fd`` (not a test's capture)."""
    try:
        return stream is not None and stream.fileno() == fd
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False


@contextlib.contextmanager
def captured_output(fds=(1, 2), python_to_console=False, max_bytes=None):
    """Points the descriptors ``fds`` at one temporary file for the block; yields a ``Capture``
    whose ``text`` holds what they received once the block has ended (the last ``max_bytes``
    bytes of it if given). See the module's docstring."""
    capture = Capture(fds)
    _flush_python_streams(fds)
    saved = {}
    try:
        for fd in fds:
            saved[fd] = os.dup(fd)
    except OSError:  # a closed descriptor: no console to protect, run as is
        for copy in saved.values():
            os.close(copy)
        yield capture
        return
    swapped = {}  # Python stream name -> the stream it replaced
    try:
        with tempfile.TemporaryFile() as sink:
            try:
                if python_to_console:
                    for fd in fds:
                        name = STREAMS.get(fd)
                        stream = getattr(sys, name, None) if name else None
                        if _writes_to(stream, fd):  # Python keeps writing to the console
                            swapped[name] = stream
                            setattr(sys, name, os.fdopen(os.dup(saved[fd]), "w", buffering=1,
                                                         encoding=stream.encoding, errors="backslashreplace"))
                for fd in fds:
                    os.dup2(sink.fileno(), fd)
                capture.active = True
                yield capture
            finally:
                _flush_python_streams(fds)
                for fd, copy in saved.items():
                    os.dup2(copy, fd)
                for name, stream in swapped.items():
                    setattr(sys, name, stream)  # the copy stays open: a logging handler may hold it
                size = sink.seek(0, os.SEEK_END)
                sink.seek(0 if max_bytes is None else max(0, size - max_bytes))
                capture.text = sink.read().decode("utf-8", "replace")
    finally:
        for copy in saved.values():
            os.close(copy)
