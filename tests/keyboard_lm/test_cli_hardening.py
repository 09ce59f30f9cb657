"""Nothing lost, no tracebacks: outputs that are not the command's own are never replaced,
unwritable paths, out-of-range numbers and bad text are one line before any work, and the
console shows the tool's lines only. Real CLI, real runs and bundles (the toy fixtures)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_pipeline.textio import atomic_directory, atomic_write_text, check_output
from keyboard_lm.cli import main
from tests.conftest import TOY_MESSAGES

ROOT = Path(__file__).resolve().parents[2]
KBLM = [sys.executable, "-m", "keyboard_lm.cli"]

# (command, case, test): listed in the README's table of bad-input cases; each is a test below.
CASES = [
    ("export", "--out holding someone's files: refused, files kept", "test_export_never_replaces_what_it_did_not_make"),
    ("export", "--out the run itself: refused, run kept", "test_export_never_replaces_what_it_did_not_make"),
    ("export", "--out inside the run: refused", "test_export_never_replaces_what_it_did_not_make"),
    ("export", "--out an earlier bundle: replaced (its own output)", "test_export_replaces_its_own_bundle_and_overwrite_replaces_anything"),
    ("export", "--zip onto a .zip that is not a bundle: refused", "test_export_never_replaces_what_it_did_not_make"),
    ("export", "--out in a read-only folder: one line, before converting", "test_unwritable_paths_are_one_line_before_any_work"),
    ("export", "--tolerance -1: refused by the parser", "test_numbers_out_of_range_are_one_line"),
    ("export", "--sample-messages 0: refused by the parser", "test_numbers_out_of_range_are_one_line"),
    ("export", "killed by SIGTERM mid-conversion: exit 143, no temp files left", "test_sigterm_mid_export_leaves_no_temporary_files"),
    ("export", "killed by SIGKILL: its temp files are removed by the next run", "test_sigkill_leftovers_are_removed_by_the_next_run"),
    ("personalize", "--out an existing training run: refused before loading", "test_personalize_refuses_an_out_it_did_not_make"),
    ("personalize", "--out a folder of other files: refused", "test_personalize_refuses_an_out_it_did_not_make"),
    ("personalize", "--texts with invalid UTF-8: --replace-bad-bytes, as the error advises, works", "test_personalize_and_simulate_take_the_advice_on_bad_bytes"),
    ("personalize", "--holdout 0.7 / --jobs 0 / --epochs 0: refused by the parser", "test_numbers_out_of_range_are_one_line"),
    ("data vocab", "--out a run's vocab/: refused, run kept", "test_vocab_never_breaks_a_run"),
    ("data vocab", "--out an earlier vocabulary: replaced (its own output)", "test_vocab_never_breaks_a_run"),
    ("data vocab", "--out an existing file: one line", "test_vocab_never_breaks_a_run"),
    ("data vocab", "--out a read-only folder: one line", "test_unwritable_paths_are_one_line_before_any_work"),
    ("data vocab", "--vocab-size 3 / --min-count 0: refused by the parser", "test_numbers_out_of_range_are_one_line"),
    ("data stats", "--json into a read-only folder: one line, before reading the corpus", "test_unwritable_paths_are_one_line_before_any_work"),
    ("data stats", "--plot into a read-only folder: one line", "test_unwritable_paths_are_one_line_before_any_work"),
    ("data stats", "--json onto a file that is not JSON: refused", "test_stats_and_trace_refuse_a_file_they_did_not_write"),
    ("train", "--out an existing file: one line", "test_unwritable_paths_are_one_line_before_any_work"),
    ("train", "--out in a read-only folder: one line, nothing created", "test_unwritable_paths_are_one_line_before_any_work"),
    ("evaluate", "--json into a read-only folder: one line, before evaluating", "test_unwritable_paths_are_one_line_before_any_work"),
    ("simulate", "--json into a read-only folder: one line, before replaying", "test_unwritable_paths_are_one_line_before_any_work"),
    ("simulate", "--limit -3 / --limit 0: refused by the parser", "test_numbers_out_of_range_are_one_line"),
    ("simulate", "--text with invalid UTF-8: --replace-bad-bytes, as the error advises, works", "test_personalize_and_simulate_take_the_advice_on_bad_bytes"),
    ("trace", "--out onto a file that is not JSON: refused", "test_stats_and_trace_refuse_a_file_they_did_not_write"),
    ("every command", "no TensorFlow/absl/CUDA start-up lines on the console", "test_no_library_noise_on_the_console"),
    ("suggest", "no LiteRT 'XNNPACK delegate' line on the console", "test_no_library_noise_on_the_console"),
    ("train", "progress into a file: plain lines, no colour codes or backspaces", "test_progress_into_a_file_is_plain_lines"),
    ("data stats", "progress into a pipe: plain lines, no carriage returns", "test_progress_into_a_pipe_is_plain_lines"),
]


def one_error_line(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kblm: error: "), err
    for needle in needles:
        assert str(needle) in lines[0], (needle, err)
    return lines[0]


def snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "messages.txt"
    path.write_text("\n".join(TOY_MESSAGES * 20) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def read_only(tmp_path):
    """A folder nothing can be written in, even as root (chattr +i; chmod does not stop root)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    (folder / "existing.txt").write_text("keep me\n")
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        if os.geteuid() == 0:
            pytest.skip("chattr +i is not supported on this file system")
        folder.chmod(0o555)
    yield folder
    subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
    folder.chmod(0o755)


# -- outputs that are not the command's own ------------------------------------------------

def test_export_never_replaces_what_it_did_not_make(toy_run, tmp_path, capsys):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "notes.txt").write_text("hi\n")
    run_before = snapshot(toy_run)
    assert main(["export", str(toy_run), "--out", str(folder)]) == 1
    one_error_line(capsys, folder, "--overwrite")
    assert (folder / "notes.txt").read_text() == "hi\n"
    assert main(["export", str(toy_run), "--out", str(toy_run)]) == 1
    one_error_line(capsys, toy_run, "inside the run")
    assert main(["export", str(toy_run), "--out", str(toy_run / "bundle")]) == 1
    one_error_line(capsys, "inside the run")
    assert snapshot(toy_run) == run_before
    not_a_bundle = tmp_path / "b.zip"
    not_a_bundle.write_bytes(b"my own zip\n")
    assert main(["export", str(toy_run), "--quantize", "float32", "--out", str(tmp_path / "b"), "--zip"]) == 1
    one_error_line(capsys, not_a_bundle)
    assert not_a_bundle.read_bytes() == b"my own zip\n" and not (tmp_path / "b").exists()


def test_export_replaces_its_own_bundle_and_overwrite_replaces_anything(toy_run, tmp_path, capsys):
    out = tmp_path / "bundle"
    args = ["export", str(toy_run), "--quantize", "float32", "--sample-messages", "20", "--out", str(out)]
    assert main(args) == 0
    first = json.loads((out / "manifest.json").read_text())["created"]
    time.sleep(1.1)
    assert main(args + ["--zip"]) == 0  # its own earlier output: replaced
    assert json.loads((out / "manifest.json").read_text())["created"] != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "bundle.zip"]  # no temp left
    capsys.readouterr()
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "notes.txt").write_text("hi\n")
    assert main(args[:-1] + [str(folder), "--overwrite"]) == 0
    listed = json.loads((folder / "manifest.json").read_text())["files"]
    assert "adapter-general.txt" in listed  # an optional file: the re-run above replaced a bundle holding it
    assert sorted(p.name for p in folder.iterdir()) == sorted([*listed, "manifest.json"])


def test_export_recognises_its_bundle_holding_every_optional_file(tmp_path):
    from data_pipeline.errors import KblmError
    from keyboard_lm.phone.bundle import BUNDLE_NAMES, BUNDLE_OUTPUT, BUNDLE_ZIP_OUTPUT

    directory = tmp_path / "bundle"
    directory.mkdir()
    for name in BUNDLE_NAMES:
        (directory / name).write_text('{"format_version": 1}' if name == "manifest.json" else "x")
    check_output(directory, BUNDLE_OUTPUT)
    archive = tmp_path / "bundle.zip"
    shutil.make_archive(str(archive.with_suffix("")), "zip", directory)
    check_output(archive, BUNDLE_ZIP_OUTPUT)
    (directory / "notes.txt").write_text("mine\n")
    with pytest.raises(KblmError, match="--overwrite"):
        check_output(directory, BUNDLE_OUTPUT)


def test_personalize_refuses_an_out_it_did_not_make(toy_run, tmp_path, user_file, capsys):
    run_before = snapshot(toy_run)
    args = ["personalize", "--base", str(toy_run), "--texts", str(user_file), "--epochs", "1",
            "--quantize", "none", "--ksr-limit", "0", "--general-limit", "50"]
    assert main(args + ["--out", str(toy_run)]) == 1  # a training run, not a personalization
    one_error_line(capsys, toy_run, "--overwrite")
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work\n")
    assert main(args + ["--out", str(folder)]) == 1
    one_error_line(capsys, folder)
    assert (folder / "thesis.tex").read_text() == "years of work\n"
    assert snapshot(toy_run) == run_before


def test_personalize_and_simulate_take_the_advice_on_bad_bytes(toy_run, toy_bundle, tmp_path, capsys):
    from tests.keyboard_lm.test_personalize import USER_SENTENCES

    broken = tmp_path / "broken.txt"
    broken.write_bytes(("\n".join(USER_SENTENCES * 40) + "\n").encode() + b"see you \xff there\n")
    args = ["personalize", "--base", str(toy_run), "--texts", str(broken), "--out", str(tmp_path / "p"),
            "--epochs", "1", "--no-final-pass", "--quantize", "none", "--ksr-limit", "0", "--general-limit", "50"]
    assert main(args) == 1
    assert "--replace-bad-bytes" in one_error_line(capsys, broken, "line 201")
    # With the flag the text is read (and checked: words, vocabulary); the run then stops at the
    # next input, a missing --eval-texts, which shows it got past the bad byte without a full fine-tune.
    missing = tmp_path / "missing-eval.txt"
    assert main(args + ["--replace-bad-bytes", "--eval-texts", str(missing)]) == 1
    one_error_line(capsys, missing, "no such file")
    assert not (tmp_path / "p").exists()
    sim = ["simulate", str(toy_bundle), "--text", str(broken), "--limit", "5"]
    assert main(sim) == 1
    assert "--replace-bad-bytes" in one_error_line(capsys, broken)
    assert main(sim + ["--replace-bad-bytes"]) == 0
    assert "KSR" in capsys.readouterr().out


def test_vocab_never_breaks_a_run(toy_run, tmp_path, user_file, capsys):
    run_before = snapshot(toy_run)
    assert main(["data", "vocab", str(user_file), "--out", str(toy_run / "vocab")]) == 1
    one_error_line(capsys, toy_run / "vocab", "--overwrite")
    assert snapshot(toy_run) == run_before
    out = tmp_path / "v"
    assert main(["data", "vocab", str(user_file), "--out", str(out)]) == 0
    assert main(["data", "vocab", str(user_file), "--out", str(out), "--vocab-size", "6"]) == 0  # its own
    assert len((out / "vocab.txt").read_text().splitlines()) == 6
    capsys.readouterr()
    assert main(["data", "vocab", str(user_file), "--out", str(user_file)]) == 1
    one_error_line(capsys, user_file, "not a directory")


@pytest.mark.parametrize("argv, field", [
    (["simulate", "B", "--text", "t", "--limit", "-3"], "--limit"),
    (["simulate", "B", "--text", "t", "--limit", "0"], "--limit"),
    (["export", "R", "--out", "o", "--tolerance", "-1"], "--tolerance"),
    (["export", "R", "--out", "o", "--sample-messages", "0"], "--sample-messages"),
    (["personalize", "--base", "b", "--texts", "t", "--out", "o", "--holdout", "0.7"], "--holdout"),
    (["personalize", "--base", "b", "--texts", "t", "--out", "o", "--jobs", "0"], "--jobs"),
    (["personalize", "--base", "b", "--texts", "t", "--out", "o", "--epochs", "0"], "--epochs"),
    (["data", "vocab", "c", "--out", "o", "--vocab-size", "3"], "--vocab-size"),
    (["data", "vocab", "c", "--out", "o", "--min-count", "0"], "--min-count"),
    (["evaluate", "R", "--max-batches", "abc"], "--max-batches"),
])
def test_numbers_out_of_range_are_one_line(argv, field, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and field in err and "error" in err, err


@pytest.mark.parametrize("kind, content", [("json", b"\x89PNG not json"), ("png", b"{}")])
def test_file_outputs_replace_only_their_own_kind(tmp_path, kind, content):
    from data_pipeline.errors import KblmError

    path = tmp_path / f"out.{kind}"
    path.write_bytes(content)
    with pytest.raises(KblmError, match="--overwrite"):
        check_output(path, kind)
    check_output(path, kind, overwrite=True)
    own = tmp_path / f"own.{kind}"
    own.write_bytes(b"{}" if kind == "json" else b"\x89PNG\r\n\x1a\n...")
    check_output(own, kind)


def test_stats_and_trace_refuse_a_file_they_did_not_write(toy_bundle, tmp_path, user_file, capsys):
    notes = tmp_path / "notes.md"
    notes.write_text("# my notes\n")
    assert main(["data", "stats", str(user_file), "--no-padding", "--json", str(notes)]) == 1
    one_error_line(capsys, notes, "--overwrite")
    keys = tmp_path / "keys.txt"
    keys.write_text("see you\n")
    assert main(["trace", str(toy_bundle), "--keys", str(keys), "--out", str(notes)]) == 1
    one_error_line(capsys, notes)
    assert notes.read_text() == "# my notes\n"


# -- paths that cannot be written: one line, before any work -----------------------------

def test_unwritable_paths_are_one_line_before_any_work(toy_run, toy_bundle, tmp_path, user_file, read_only,
                                                        capsys):
    locked = read_only
    cases = [
        (["data", "vocab", str(user_file), "--out", str(locked / "v")], locked),
        (["data", "vocab", str(user_file), "--out", str(locked)], locked),
        (["data", "stats", str(user_file), "--json", str(locked / "s.json")], locked),
        (["data", "stats", str(user_file), "--plot", str(locked / "s.png")], locked),
        (["train", "--corpus", str(user_file), "--preset", "tiny", "--out", str(locked / "run")], locked),
        (["train", "--corpus", str(user_file), "--preset", "tiny", "--out", str(locked / "a" / "run")], locked),
        (["train", "--corpus", str(user_file), "--preset", "tiny", "--out", str(user_file)], user_file),
        (["export", str(toy_run), "--out", str(locked / "b")], locked),
        (["evaluate", str(toy_run), "--json", str(locked / "e.json")], locked),
        (["simulate", str(toy_bundle), "--text", str(user_file), "--json", str(locked / "r.json")], locked),
    ]
    for argv, needle in cases:
        started = time.monotonic()
        assert main(argv) == 1, argv
        captured = capsys.readouterr()
        assert "KSR" not in captured.out  # simulate: refused before replaying, not after printing
        err = captured.err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("kblm: error: ") and str(needle) in err, (argv, err)
        assert time.monotonic() - started < 30, argv  # refused up front, not after the work
    assert sorted(p.name for p in locked.iterdir()) == ["existing.txt"]


# -- kills ----------------------------------------------------------------------------------

def test_sigterm_mid_export_leaves_no_temporary_files(toy_run, tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    out = tmp_path / "bundles" / "b"
    process = subprocess.Popen(KBLM + ["export", str(toy_run), "--quantize", "float32", "--out", str(out)],
                               env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(temp.glob("kblm-convert-*")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert list(temp.glob("kblm-convert-*")), "the export never reached the conversion"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143 and err.strip() == "kblm: terminated", err
    assert not list(temp.iterdir()) and not out.exists()
    assert not (tmp_path / "bundles").exists() or not list((tmp_path / "bundles").iterdir())  # no .b.*.tmp


def test_sigterm_that_a_library_reports_as_its_own_error_still_terminates(tmp_path, monkeypatch, capsys):
    """C++ callbacks (pybind11) and wrappers may catch the termination and raise an error of their
    own; the command still leaves as terminated (143), not as a failure of kblm (1), and the
    native libraries' captured chatter is not replayed (that is for failures)."""
    import keyboard_lm.cli as cli

    def wrapped_command(args):
        os.write(2, b"I0000 cudart_stub.cc:31] Could not find cuda drivers\n")  # as TensorFlow's C++ does
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except BaseException as e:
            raise RuntimeError("conversion failed") from e

    monkeypatch.setattr(cli, "cmd_data_stats", wrapped_command)
    assert main(["data", "stats", str(tmp_path)]) == 143
    assert capsys.readouterr().err.strip() == "kblm: terminated"
    assert signal.getsignal(signal.SIGTERM) is not cli._on_sigterm  # the handler is given back


def test_sigkill_leftovers_are_removed_by_the_next_run(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    pid = int(dead.stdout)
    out = tmp_path / "b"
    left_dir = tmp_path / f".b.kblm-{pid}-x1y2.tmp"
    left_dir.mkdir()
    (left_dir / "model.tflite").write_bytes(b"half")
    left_file = tmp_path / f".b.kblm-{pid}-z3.tmp"
    left_file.write_bytes(b"half")
    live = tmp_path / f".b.kblm-{os.getppid()}-live.tmp"  # a running process's: kept
    live.mkdir()
    unrelated = tmp_path / ".b.mine.tmp"  # not a name kblm makes: kept
    unrelated.mkdir()
    with atomic_directory(out) as tmp:
        (tmp / "x").write_text("x")
    atomic_write_text(tmp_path / "r.json", "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["b", "r.json", live.name, unrelated.name])


# -- the console ----------------------------------------------------------------------------

def _run_cli(args, tmp_path, **kwargs):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KBLM_VERBOSE")}
    return subprocess.run(KBLM + args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, **kwargs)


NOISE = ("absl", "cuda", "cuDNN", "XNNPACK", "oneDNN", "TensorFlow binary", "I0000", "W0000", "E0000")


def test_no_library_noise_on_the_console(toy_bundle, tmp_path, user_file):
    stats = _run_cli(["data", "stats", str(user_file)], tmp_path)  # imports TensorFlow (padding share)
    assert stats.returncode == 0 and "padding share" in stats.stdout
    error = _run_cli(["train", "--corpus", str(user_file), "--out", str(tmp_path / "r"), "--embedding-dim", "-5"],
                     tmp_path)
    suggest = _run_cli(["suggest", str(toy_bundle), "see you at the "], tmp_path)
    assert suggest.returncode == 0 and "next words" in suggest.stdout
    for result in (stats, error, suggest):
        console = result.stdout + result.stderr
        assert not [n for n in NOISE if n in console], console
    assert error.returncode == 1 and error.stderr.strip().count("\n") == 0
    # (KBLM_VERBOSE=1, which --verbose sets, lets LiteRT speak: tests/export/test_bundle_errors.py)


def test_progress_into_a_file_is_plain_lines(tmp_path, user_file, monkeypatch):
    """Training's progress written to a file (not a terminal): Keras's bar would write colour
    codes and backspaces there; the run prints plain lines instead (in process: the same code
    path as the command, without a second TensorFlow start-up)."""
    log = tmp_path / "train.log"
    with open(log, "w") as sink:
        monkeypatch.setattr(sys, "stdout", sink)
        status = main(["train", "--corpus", str(user_file), "--dry-run", "--out", str(tmp_path / "r")])
    monkeypatch.undo()
    text = log.read_text()
    assert status == 0, text
    assert "\x1b" not in text and "\b" not in text and "\r" not in text, repr(text[:500])
    assert "epoch 1/1 done" in text
    assert max(len(line) for line in text.splitlines()) < 400


def test_progress_into_a_pipe_is_plain_lines(tmp_path):
    """tqdm's bars (tokenizing a corpus) become plain lines when stderr is a pipe."""
    big = tmp_path / "big.txt"
    big.write_text("\n".join(f"message number {i} about the station and the train" for i in range(40_000)) + "\n")
    env = {**os.environ, "KBLM_PROGRESS_INTERVAL": "0.001"}  # a line (at most) every ms: some on any machine
    result = subprocess.run(KBLM + ["data", "vocab", str(big), "--out", str(tmp_path / "v")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr and "\x1b" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("tokenizing")]
    assert lines and all("%|" in line for line in lines), result.stderr
