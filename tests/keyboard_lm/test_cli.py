"""The kblm CLI end to end on small text files: outputs, one-line errors, exit codes."""
import json
import subprocess
import sys

import pytest

from data_pipeline.vocab import Vocabulary
from keyboard_lm.cli import main
from tests.conftest import TOY_MESSAGES


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "messages.txt"
    path.write_text("\n".join(TOY_MESSAGES * 20) + "\n", encoding="utf-8")
    return path


def test_vocab_and_stats(tmp_path, user_file, capsys):
    assert main(["data", "vocab", str(user_file), "--out", str(tmp_path / "v")]) == 0
    vocab = Vocabulary.load(tmp_path / "v")
    assert vocab.id("station") > 3
    assert main(["data", "stats", str(user_file), "--vocab", str(tmp_path / "v"),
                 "--json", str(tmp_path / "s.json"), "--plot", str(tmp_path / "s.png")]) == 0
    out = capsys.readouterr().out
    assert "tokens per message (train)" in out and "padding share" in out
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["splits"]["train"]["messages"] == 96 and stats["splits"]["train"]["coverage"] == 1.0
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("content, message", [
    (b"ok line\n\xc3\x28 broken\n", "line 2, byte offset 8: invalid UTF-8"),
    (b"", "no text"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    assert main(["data", "vocab", str(path), "--out", str(tmp_path / "v")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("kblm: error: ") and message in err and str(path) in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "v").exists()


def test_replace_bad_bytes_flag(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"caf\xe9 au lait\nsee you\n" * 5)
    assert main(["data", "vocab", str(path), "--replace-bad-bytes", "--out", str(tmp_path / "v")]) == 0


def test_missing_corpus_path(tmp_path, capsys):
    assert main(["data", "stats", str(tmp_path / "nope.txt")]) == 1
    assert "no such file or directory" in capsys.readouterr().err


def test_console_script_help():
    result = subprocess.run([sys.executable, "-m", "keyboard_lm.cli", "data", "--help"],
                            capture_output=True, text=True, check=True)
    assert "fetch" in result.stdout and "stats" in result.stdout
