"""Keeps native libraries' console chatter off the user's screen during a command. Plain Python.

TensorFlow, XLA and LiteRT write from C++ straight to file descriptor 2 (see
``keyboard_lm.phone.native_output``, the one mechanism for that). While a command runs,
descriptor 2 points at a temporary file and Python's own ``sys.stderr`` (the tool's
messages, progress bars, warnings) at a copy of the real one. If the command fails
unexpectedly, the captured native text is replayed after its message, so nothing that
explains a crash is lost. ``kblm --verbose`` turns all of this off.
"""
import contextlib
import sys

from data_pipeline.errors import KblmError
from keyboard_lm.phone.native_output import captured_output

REPLAY_LINES = 20  # native lines replayed after an unexpected failure
REPLAY_BYTES = 1 << 16  # of the captured text's end, enough for those lines


@contextlib.contextmanager
def quiet_native_output(enabled=True):
    if not enabled:
        yield
        return
    capture = None
    try:
        with captured_output((2,), python_to_console=True, max_bytes=REPLAY_BYTES) as capture:
            yield
    except (KblmError, OSError):  # the tool's own one-line errors: nothing to add
        raise
    except Exception:
        _replay(capture.text if capture is not None else "")
        raise


def _replay(text):
    lines = text.splitlines()[-REPLAY_LINES:]
    lines = [line for line in lines if line.strip()]
    if lines:
        print("kblm: native library messages before the failure:", *lines, sep="\n  ", file=sys.stderr)
