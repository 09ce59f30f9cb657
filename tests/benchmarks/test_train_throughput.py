"""benchmarks/train_throughput.py's PyTorch side: skipped in one line without torch, and (with
the ``peers`` extra) the peer trains on an id stream and reports tokens/s. Each runs in a
subprocess: torch and TensorFlow never share a process."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCK_TORCH = "import sys; sys.modules['torch'] = None; "  # `import torch` now raises ImportError


def python(code, *args):
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_the_peer_says_it_is_skipped_without_torch(tmp_path):
    done = python(BLOCK_TORCH + "from benchmarks.peers import wlm_torch; "
                  "sys.exit(wlm_torch.main(['--ids', 'missing.npy', '--vocabulary-size', '10']))")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and "skipped" in lines[0] and "torch" in lines[0]


def test_the_benchmark_skips_the_pytorch_row_in_one_line(tmp_path):
    done = python(BLOCK_TORCH + "from benchmarks import train_throughput as t; "
                  "sys.exit(t.main(['--only', 'pytorch-peer', '--quick', '--rounds', '0']))")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "skipped" in lines[0] and "PyTorch" in lines[0]
    assert sum("skipped" in line for line in lines) == 1
    assert json.loads("\n".join(lines[1:]))["rows"] == []  # a smoke run prints; it writes nothing


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="the peers extra is not installed")
def test_the_peer_trains_on_an_id_stream(tmp_path):
    ids = tmp_path / "ids.npy"
    np.save(ids, np.random.default_rng(0).integers(0, 50, 20 * 36 * 3).astype(np.int32))
    done = subprocess.run([sys.executable, "-m", "benchmarks.peers.wlm_torch", "--ids", str(ids),
                           "--vocabulary-size", "50", "--steps", "3", "--warmup", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})  # a smoke run: no thread contention
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["tokens_per_second"] > 0 and result["steps"] == 3
    assert 0 < result["last_loss"] < 2 * np.log(50)  # a cross-entropy over 50 words, not garbage
