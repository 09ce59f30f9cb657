"""Keeps native libraries' console chatter off the user's screen. Plain Python, no TensorFlow.

TensorFlow, XLA and LiteRT write from C++ straight to file descriptor 2, some of it before
their logging is configured (``TF_CPP_MIN_LOG_LEVEL`` does not reach "All log messages
before absl::InitializeLog()" or "Could not find cuda drivers"; LiteRT's "Created
TensorFlow Lite XNNPACK delegate" has no switch). No library offers a way to silence
these, so this is hand-written: while a command runs, descriptor 2 points at a temporary
file and Python's own ``sys.stderr`` (the tool's messages, progress bars, warnings) at a
copy of the real one. If the command fails unexpectedly, the captured native text is
replayed after its message, so nothing that explains a crash is lost. ``kblm --verbose``
turns all of this off.
"""
import contextlib
import io
import os
import sys
import tempfile

from data_pipeline.errors import KblmError

REPLAY_LINES = 20  # native lines replayed after an unexpected failure


def _real_stderr():
    """True if ``sys.stderr`` writes to descriptor 2 (not a test's capture)."""
    try:
        return sys.stderr is not None and sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False


@contextlib.contextmanager
def quiet_native_output(enabled=True):
    if not enabled:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no descriptor 2 (a daemon, say): nothing to quiet
        yield
        return
    log = tempfile.TemporaryFile()
    python_stderr = sys.stderr
    swap = _real_stderr()
    if swap:  # Python keeps writing to the terminal; the descriptor goes to the log
        sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, encoding=python_stderr.encoding,
                               errors="backslashreplace")
    os.dup2(log.fileno(), 2)
    failed = False
    try:
        yield
    except (KblmError, OSError):  # the tool's own one-line errors: nothing to add
        raise
    except Exception:
        failed = True
        raise
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        if swap:
            sys.stderr = python_stderr  # the copy stays open: a logging handler may hold it
        if failed:
            _replay(log)
        log.close()


def _replay(log):
    log.seek(0)
    lines = log.read().decode("utf-8", "replace").splitlines()[-REPLAY_LINES:]
    lines = [line for line in lines if line.strip()]
    if lines:
        print("kblm: native library messages before the failure:", *lines, sep="\n  ", file=sys.stderr)
