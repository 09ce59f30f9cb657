"""Reading user text strictly and writing files atomically. Plain Python, no TensorFlow.

Every artifact the toolkit writes goes through a temporary path in the same
directory and an ``os.replace``, so a killed process never leaves a half-written
file (or directory) where a finished one is expected.
"""
import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from data_pipeline.errors import KblmError


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path, data):
    """Writes ``data`` to ``path`` through a temp file + rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_directory(path):
    """Yields a temp directory that becomes ``path`` only if the block succeeds.

    An existing ``path`` is replaced only after the new one is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give the usual directory mode
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def decode_utf8(data, source, replace_bad_bytes=False):
    """Decodes ``data`` (bytes read from ``source``) as UTF-8.

    Raises KblmError naming the file, line and byte offset of the first bad byte,
    unless ``replace_bad_bytes`` (then each bad byte becomes U+FFFD). A NUL byte is
    taken as the sign of a binary file.
    """
    nul = data.find(b"\x00")
    if nul >= 0 and not replace_bad_bytes:
        line = data.count(b"\n", 0, nul) + 1
        raise KblmError(f"{source}: line {line}, byte offset {nul}: NUL byte, this looks like "
                        "a binary file, not UTF-8 text (use --replace-bad-bytes to read it anyway)")
    try:
        text = data.decode("utf-8", errors="replace" if replace_bad_bytes else "strict")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise KblmError(f"{source}: line {line}, byte offset {e.start}: invalid UTF-8 "
                        f"({e.reason}; use --replace-bad-bytes to replace bad bytes)") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\x00", "\ufffd") if replace_bad_bytes else text


def read_text(path, replace_bad_bytes=False):
    """Reads one UTF-8 text file; missing or unreadable paths give one-line errors."""
    path = Path(path)
    if not path.exists():
        raise KblmError(f"{path}: no such file or directory")
    if path.is_dir():
        raise KblmError(f"{path}: is a directory, expected a text file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise KblmError(f"{path}: cannot read ({e.strerror})") from None
    return decode_utf8(data, path, replace_bad_bytes)
