"""The one fd-capture primitive (keyboard_lm.phone.native_output) and its two users: the
CLI's quiet console (keyboard_lm.quiet) and LiteRT's captured start-up (phone.runtime)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from data_pipeline.errors import KblmError
from keyboard_lm.phone.native_output import captured_output
from keyboard_lm.phone.runtime import native_output_captured
from keyboard_lm.quiet import REPLAY_LINES, quiet_native_output

ROOT = Path(__file__).resolve().parents[2]


def open_fds():
    return sorted(os.listdir("/proc/self/fd")) if Path("/proc/self/fd").exists() else None


def test_both_descriptors_go_to_the_capture_and_come_back(capfd):
    os.write(2, b"before\n")
    fds = open_fds()
    with captured_output((1, 2)) as capture:
        os.write(1, b"native out\n")
        os.write(2, b"native err\n")
        assert capture.active and capture.text == ""  # filled when the block ends
    os.write(1, b"after\n")
    assert capture.text == "native out\nnative err\n"
    assert capfd.readouterr() == ("after\n", "before\n")
    assert open_fds() == fds  # the copies and the file are closed


def test_restored_on_an_exception_and_not_replayed_by_the_primitive(capfd):
    with pytest.raises(KeyboardInterrupt):
        with captured_output((2,)) as capture:
            os.write(2, b"native: dying\n")
            raise KeyboardInterrupt
    os.write(2, b"after\n")
    assert capture.text == "native: dying\n"
    assert capfd.readouterr().err == "after\n"  # replaying is the caller's choice


def test_max_bytes_keeps_the_end():
    with captured_output((2,), max_bytes=6) as capture:
        os.write(2, b"0123456789\nlast\n")
    assert capture.text == "\nlast\n"


def _python(code):
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    environment.pop("KBLM_VERBOSE", None)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, cwd=ROOT,
                          timeout=120)


def test_python_keeps_the_console_while_native_text_is_captured():
    """In a real process (sys.stderr on descriptor 2): the tool's own messages still show."""
    result = _python("import os, sys\n"
                     "from keyboard_lm.phone.native_output import captured_output\n"
                     "with captured_output((2,), python_to_console=True) as c:\n"
                     "    os.write(2, b'native chatter\\n')\n"
                     "    print('kblm: a message of ours', file=sys.stderr)\n"
                     "print('kblm: after', file=sys.stderr)\n"
                     "print(repr(c.text))\n")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "kblm: a message of ours\nkblm: after\n"
    assert result.stdout == "'native chatter\\n'\n"


def _is_open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def test_a_closed_descriptor_runs_the_block_uncaptured(capfd):
    closed = next(fd for fd in range(64, 1024) if not _is_open(fd))
    fds = open_fds()
    with captured_output((2, closed)) as capture:  # the first is duplicated, the second cannot be
        os.write(2, b"shown\n")
    assert not capture.active and capture.text == ""
    assert open_fds() == fds and capfd.readouterr().err == "shown\n"


def test_quiet_replays_the_last_native_lines_after_an_unexpected_failure(capfd):
    with pytest.raises(ZeroDivisionError):
        with quiet_native_output():
            os.write(2, b"".join(b"native %d\n\n" % i for i in range(30)))
            1 / 0
    lines = capfd.readouterr().err.splitlines()
    assert lines[0] == "kblm: native library messages before the failure:"
    assert lines[1:] == [f"  native {i}" for i in range(30 - REPLAY_LINES // 2, 30)]  # blank lines dropped


def test_quiet_adds_nothing_to_the_tools_own_errors_or_a_success(capfd):
    for error in (KblmError("bad input"), FileNotFoundError("no such file")):
        with pytest.raises(type(error)):
            with quiet_native_output():
                os.write(2, b"native chatter\n")
                raise error
        assert capfd.readouterr() == ("", "")
    with quiet_native_output():
        os.write(2, b"native chatter\n")
    with quiet_native_output(enabled=False):  # --verbose
        os.write(2, b"shown\n")
    assert capfd.readouterr() == ("", "shown\n")


def test_runtime_capture_is_the_primitive_and_kblm_verbose_turns_it_off(capfd, monkeypatch):
    with native_output_captured() as captured:
        os.write(1, b"litert\n")
        os.write(2, b"litert err\n")
    assert captured == ["litert\nlitert err\n"] and capfd.readouterr() == ("", "")
    monkeypatch.setenv("KBLM_VERBOSE", "1")
    with native_output_captured() as captured:
        os.write(2, b"litert speaks\n")
    assert captured == [] and capfd.readouterr().err == "litert speaks\n"
