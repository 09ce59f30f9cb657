"""Distribution, tested on CPU: two mirrored replicas step exactly like one device, and two
MultiWorkerMirroredStrategy workers on 127.0.0.1 finish with identical weights."""
import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.keyboard_lm.test_training import SENTENCES

MODEL = {"embedding_dim": 8, "rnn_units": [16], "dropout": 0.0}


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "messages.txt"
    path.write_text("\n".join(SENTENCES * 100) + "\n", encoding="utf-8")
    return str(path)


def run_python(code, env=None, timeout=300):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def weights_of(run_dir):
    code = f"""
        import numpy as np
        from keyboard_lm.training.run import load_run_model
        np.savez({str(run_dir / 'w.npz')!r}, *load_run_model({str(run_dir)!r}).get_weights())
    """
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    data = np.load(run_dir / "w.npz")
    return [data[k] for k in sorted(data.files, key=lambda k: int(k.split("_")[1]))]


@pytest.mark.parametrize("mode", ["message", "stream"])
def test_two_mirrored_replicas_step_like_one_device(tmp_path, corpus_file, mode):
    runs = {}
    for strategy in ("default", "mirrored"):
        runs[strategy] = tmp_path / strategy
        code = f"""
            import tensorflow as tf
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
            from keyboard_lm.training.train import train
            from keyboard_lm.training.loop import resolve_strategy
            assert resolve_strategy({strategy!r}).num_replicas_in_sync == {2 if strategy == "mirrored" else 1}
            train({str(runs[strategy])!r}, {corpus_file!r}, "tiny", {MODEL!r},
                  {{"epochs": 1, "steps_per_epoch": 6, "strategy": {strategy!r}, "clip_norm": 0.05,
                    "pipeline": {{"mode": {mode!r}, "batch_size": 8, "sequence_length": 6,
                                  "bucket_by_length": False}}}}, progress=False)
        """
        result = run_python(code)
        assert result.returncode == 0, result.stderr[-3000:]
    one, two = weights_of(runs["default"]), weights_of(runs["mirrored"])
    moved = max(np.abs(a).max() for a in one)
    for a, b in zip(one, two):  # clip_norm is small: clipping is active, and global
        np.testing.assert_allclose(a, b, atol=2e-5 * max(1.0, moved))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_workers_finish_with_identical_weights(tmp_path, corpus_file):
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    processes = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        command = [sys.executable, "-m", "keyboard_lm.cli", "train", "--corpus", corpus_file,
                   "--preset", "tiny", "--out", str(tmp_path / f"worker{index}"), "--strategy",
                   "multi_worker", "--epochs", "2", "--steps-per-epoch", "5", "--batch-size", "8",
                   "--sequence-length", "6"]
        processes.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          text=True))
    try:
        outputs = [p.communicate(timeout=300)[0] for p in processes]
    finally:
        for p in processes:
            p.kill()
    for p, out in zip(processes, outputs):
        assert p.returncode == 0, out[-3000:]
    first, second = weights_of(tmp_path / "worker0"), weights_of(tmp_path / "worker1")
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
