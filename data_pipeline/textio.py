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
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
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


def _temp_prefix(path):
    """Temp names carry the pid, so a later run can tell a dead run's leftovers from a live one's."""
    return f".{Path(path).name}.kblm-{os.getpid()}-"


def remove_stale_temporaries(path):
    """Removes the temp files/directories a killed run (its pid gone) left next to ``path``.

    Only names this module makes (``.NAME.kblm-PID-*.tmp``) are touched, never anything else."""
    path = Path(path)
    remove_dead_process_leftovers(path.parent, f".{path.name}.kblm-")


def remove_dead_process_leftovers(directory, prefix):
    """Removes ``directory/PREFIX<pid>-*`` entries whose process no longer runs (killed runs'
    temporaries: a SIGKILL runs no cleanup)."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    for leftover in directory.glob(f"{glob_escape(prefix)}*-*"):
        pid = leftover.name[len(prefix):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                leftover.unlink()


def temporary_directory(prefix):
    """A ``tempfile.TemporaryDirectory`` named ``PREFIX<pid>-…`` in the system temp folder, after
    removing the ones killed processes left there."""
    remove_dead_process_leftovers(tempfile.gettempdir(), prefix)
    return tempfile.TemporaryDirectory(prefix=f"{prefix}{os.getpid()}-")


def glob_escape(name):
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def atomic_directory(path):
    """Yields a temp directory that becomes ``path`` only if the block succeeds.

    An existing ``path`` is replaced only after the new one is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp"))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give the usual directory mode
    try:
        yield tmp
        if path.exists():
            old = Path(f"{tmp}.old.tmp")  # a name only this run uses
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


# -- outputs: never replace what the command did not make --------------------------------

def _nearest_existing(path):
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(path, what="output"):
    """Fails early, in one line, if ``path`` could not be written (before any work is done)."""
    path = Path(path)
    if path.exists() and not (path.is_file() or path.is_dir()):
        raise KblmError(f"{path}: not a regular file or directory; cannot write the {what} there")
    parent = _nearest_existing(path.parent)
    if not parent.is_dir():
        raise KblmError(f"{path}: {parent} is a file, not a directory; cannot write the {what} there")
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".kblm-write-probe-", suffix=".tmp")
    except OSError as e:
        raise KblmError(f"{path}: cannot write the {what} in {parent} ({e.strerror or e})") from None
    os.close(fd)
    os.unlink(probe)


def is_empty_directory(path):
    path = Path(path)
    return path.is_dir() and not any(path.iterdir())


def check_output(path, kind, overwrite=False, flag="--overwrite"):
    """Refuses, in one line, an existing ``path`` that is not this kind of keyboard-lm output.

    ``kind`` is a name of ``OUTPUT_KINDS``, or a triple of the same shape from the package
    that owns the format (bundles: keyboard_lm.phone.bundle.BUNDLE_OUTPUT); its check tells
    whether the existing path is the same command's own earlier output (then it may be
    replaced, as re-running a command does). A
    missing path or an empty directory is fine; anything else needs ``overwrite`` (the
    command's ``--overwrite`` flag). Also checks that the path can be written at all."""
    path = Path(path)
    description, is_own, wants_dir = OUTPUT_KINDS[kind] if isinstance(kind, str) else kind
    if path.exists() or path.is_symlink():
        if path.is_dir() != wants_dir and not (wants_dir and is_empty_directory(path)):
            raise KblmError(f"{path}: is {'a file, not a directory' if wants_dir else 'a directory, not a file'}; "
                            f"cannot write the {description} there")
        if not overwrite and not (is_empty_directory(path) or _empty_file(path) or is_own(path)):
            raise KblmError(f"{path}: exists and is not a {description} made by kblm; refusing to "
                            f"replace it (choose another path, or pass {flag} to replace it)")
    check_writable(path, description)


def _empty_file(path):
    return path.is_file() and path.stat().st_size == 0


def _is_json(path):
    import json

    try:
        json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def _is_png(path):
    try:
        with open(path, "rb") as f:
            return f.read(8) == b"\x89PNG\r\n\x1a\n"
    except OSError:
        return False


def _only(path, names):
    return {entry.name for entry in Path(path).iterdir()} <= set(names)


def _is_vocabulary(path):
    """vocab.txt/vocab.json alone, and not a run's vocab/ (a run needs the vocabulary it trained with)."""
    path = Path(path)
    return _only(path, ("vocab.txt", "vocab.json")) and _is_json(path / "vocab.json") and \
        not (path.parent / "config.json").exists()


def _is_personalized_run(path):
    import json

    try:
        config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "personalization" in config


def _is_personalization_batch(path):
    path = Path(path)
    # (an interrupted batch has user runs but no summary yet: it resumes)
    return all(entry.name.startswith(".") or entry.name in ("summary.json", "summary.md") or
               _is_personalized_run(entry) for entry in path.iterdir())


def _is_adapter(path):
    with open(path, "rb") as f:
        return f.read(8) == b"KBLMADAP"  # keyboard_lm.phone.adapter.MAGIC


OUTPUT_KINDS = {  # kind: (what it is, "is this the command's own earlier output?", a directory?)
    "json": ("JSON report", _is_json, False),
    "png": ("PNG image", _is_png, False),
    "vocabulary": ("vocabulary directory", _is_vocabulary, True),
    "personalized_run": ("personalized run directory", _is_personalized_run, True),
    "personalization_batch": ("directory of personalized runs", _is_personalization_batch, True),
    "adapter": ("personal adapter", _is_adapter, False),
}
