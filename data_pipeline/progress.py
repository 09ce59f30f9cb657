"""Progress bars on a terminal, plain lines elsewhere. Plain Python (tqdm), no TensorFlow.

tqdm redraws its bar with carriage returns, which a log file or a pipe keeps as one
ever-growing line. When the stream is not a terminal, ``progress`` gives the same tqdm
object but writes a plain line at most every ``PLAIN_INTERVAL`` seconds (and the last
state), each ending in a newline.
"""
import os
import sys

from tqdm.auto import tqdm

PLAIN_INTERVAL = 30.0  # seconds between plain lines ($KBLM_PROGRESS_INTERVAL to change)


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _Lines:
    """A file-like wrapper that turns tqdm's carriage-return redraws into newline-ended lines."""

    def __init__(self, stream):
        self.stream, self.last = stream, None

    def write(self, text):
        for part in text.replace("\r", "\n").split("\n"):
            part = part.rstrip()
            state = part.split("[")[0]  # the count, without the timing
            if part.strip() and state != self.last:  # tqdm's close repeats the last state
                self.stream.write(part + "\n")
                self.last = state

    def flush(self):
        self.stream.flush()


def progress(iterable=None, **options):
    """``tqdm(iterable, **options)``, with plain lines when stderr is not a terminal."""
    stream = options.pop("file", None) or sys.stderr
    if options.get("disable") or _isatty(stream):
        return tqdm(iterable, file=stream, **options)
    interval = float(os.environ.get("KBLM_PROGRESS_INTERVAL", PLAIN_INTERVAL))
    options["mininterval"] = interval  # a caller's mininterval is for a terminal's redraws
    options.setdefault("delay", min(2.0, interval))  # short loops stay silent
    return tqdm(iterable, file=_Lines(stream), ascii=True, dynamic_ncols=False, ncols=100, **options)
