"""Training runs on small real text: learning, both data modes, resume, bad input, evaluation."""
import json
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from keyboard_lm.cli import main
from keyboard_lm.training.evaluate import evaluate_run
from keyboard_lm.training.run import load_run_config, load_run_model
from keyboard_lm.training.train import train

SENTENCES = [
    "the cat sat on the mat", "the dog sat on the rug", "a cat ate the fish",
    "the dog ate a bone", "my cat likes the sun", "your dog likes the park",
    "see you at the park tomorrow", "see you at the station tonight",
]
TINY_MODEL = {"embedding_dim": 16, "rnn_units": [32]}


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "messages.txt"
    rng = np.random.default_rng(0)
    lines = [SENTENCES[i] for i in rng.integers(0, len(SENTENCES), 2000)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def tiny_train(**overrides):
    pipeline = overrides.pop("pipeline", {})
    return {"epochs": 3, "learning_rate": 1e-2, "early_stopping_patience": 5,
            "pipeline": {"batch_size": 16, "sequence_length": 8, **pipeline}, **overrides}


def test_training_learns_and_writes_the_run(tmp_path, corpus_file):
    metrics = train(tmp_path / "run", corpus_file, "tiny", TINY_MODEL, tiny_train(), progress=False)
    assert metrics["status"] == "complete"
    # Eight sentences over a 20-word vocabulary: a model that learned anything is far below 20.
    assert metrics["best"]["val_perplexity"] < 4.0
    assert metrics["best"]["val_top3"] > 0.7
    for name in ("config.json", "vocab/vocab.txt", "vocab/vocab.json", "best.keras", "best.json",
                 "logs/train.csv", "curves.png", "metrics.json"):
        assert (tmp_path / "run" / name).exists(), name
    assert not (tmp_path / "run" / "backup").exists()  # removed once training ended
    assert saved_groups(tmp_path / "run" / "best.keras") == {"layers", "vars"}  # no optimizer state
    rows = (tmp_path / "run" / "logs" / "train.csv").read_text().splitlines()
    assert len(rows) == 4 and "val_perplexity" in rows[0]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"]["rnn_units"] == [32] and config["train"]["pipeline"]["batch_size"] == 16

    result = evaluate_run(tmp_path / "run", "test", progress=False)
    assert result["perplexity"] < 4.0 and result["tokens"] > 1000


def saved_groups(keras_file):
    """The top-level groups of a .keras file's weights (an optimizer's state would be one)."""
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(keras_file) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as h5:
        return set(h5)


def test_stream_mode_trains(tmp_path, corpus_file):
    metrics = train(tmp_path / "run", corpus_file, "tiny", TINY_MODEL,
                    tiny_train(pipeline={"mode": "stream", "batch_size": 8, "sequence_length": 10}),
                    progress=False)
    assert metrics["best"]["val_perplexity"] < 4.0
    result = evaluate_run(tmp_path / "run", "test", progress=False)  # stream, 10 rows
    assert result["mode"] == "stream" and result["perplexity"] < 4.0


def test_same_seed_same_model(tmp_path, corpus_file):
    weights = []
    for name in ("a", "b"):
        train(tmp_path / name, corpus_file, "tiny", TINY_MODEL, tiny_train(epochs=1, steps_per_epoch=5),
              progress=False)
        weights.append(load_run_model(tmp_path / name).get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def test_killed_run_resumes_where_it_stopped(tmp_path, corpus_file):
    run = tmp_path / "run"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"train": {"early_stopping_patience": 100, "schedule": "constant"}}))
    command = [sys.executable, "-m", "keyboard_lm.cli", "train", "--corpus", corpus_file, "--preset",
               "tiny", "--out", str(run), "--config", str(config), "--epochs", "20",
               "--batch-size", "16", "--sequence-length", "8"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metadata = run / "backup" / "training_metadata.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if metadata.exists() and json.loads(metadata.read_text() or "{}").get("epoch", 0) >= 2:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = json.loads(metadata.read_text())["epoch"]
    assert 2 <= done < 20
    assert main(["train", "--out", str(run), "--resume"]) == 0
    rows = (run / "logs" / "train.csv").read_text().splitlines()[1:]
    epochs = [int(r.split(",")[0]) for r in rows]
    assert epochs[-1] == 19 and epochs.count(done) == 1  # resumed at epoch `done`, not at 0
    assert json.loads((run / "metrics.json").read_text())["status"] == "complete"


def test_divergence_stops_with_a_clear_message(tmp_path, corpus_file, capsys):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"train": {"optimizer": "sgd", "learning_rate": 1e30,
                                            "clip_norm": 1e30, "schedule": "constant"}}))
    code = main(["train", "--corpus", corpus_file, "--preset", "tiny", "--out", str(tmp_path / "run"),
                 "--config", str(config), "--epochs", "2"])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()  # progress bars, then the error
    errors = [line for line in err if line.startswith("kblm: error:")]
    assert errors == [err[-1]] and "training diverged" in err[-1]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["status"] == "diverged"


def test_interrupted_save_never_corrupts_the_best_model(tmp_path, corpus_file, monkeypatch):
    train(tmp_path / "run", corpus_file, "tiny", TINY_MODEL, tiny_train(epochs=1, steps_per_epoch=3),
          progress=False)
    best = tmp_path / "run" / "best.keras"
    before = best.read_bytes()
    from keyboard_lm.training import callbacks

    model_config = load_run_config(tmp_path / "run")[0]
    checkpoint = callbacks.AtomicModelCheckpoint(str(best), tmp_path / "run" / "best.json", model_config)
    checkpoint.set_model(load_run_model(tmp_path / "run"))

    def killed_mid_write(model, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Model, "save", killed_mid_write)  # whichever model the checkpoint saves
    with pytest.raises(KeyboardInterrupt):
        checkpoint.on_epoch_end(0, {"val_perplexity": 1.0})
    assert best.read_bytes() == before
    keras.saving.load_model(best, safe_mode=True)


@pytest.mark.parametrize("args, message", [
    (["--preset", "huge"], "unknown preset 'huge'"),
    (["--batch-size", "100000"], "fewer than one batch"),
    (["--mode", "stream", "--batch-size", "5000"], "fewer than one batch"),
])
def test_bad_training_input(tmp_path, corpus_file, capsys, args, message):
    assert main(["train", "--corpus", corpus_file, "--out", str(tmp_path / "run"), *args]) == 1
    assert message in capsys.readouterr().err


def test_unknown_config_key(tmp_path, corpus_file, capsys):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"train": {"learning_rat": 0.1}}))
    assert main(["train", "--corpus", corpus_file, "--out", str(tmp_path / "run"),
                 "--config", str(config)]) == 1
    assert "unknown key(s) ['learning_rat']" in capsys.readouterr().err


def test_existing_run_is_not_overwritten_and_vocab_must_match(tmp_path, corpus_file, capsys):
    run = tmp_path / "run"
    train(run, corpus_file, "tiny", TINY_MODEL, tiny_train(epochs=1, steps_per_epoch=2), progress=False)
    assert main(["train", "--corpus", corpus_file, "--preset", "tiny", "--out", str(run)]) == 1
    assert "a run is already there" in capsys.readouterr().err
    vocab_txt = run / "vocab" / "vocab.txt"
    meta = json.loads((run / "vocab" / "vocab.json").read_text())
    vocab_txt.write_text("\n".join(vocab_txt.read_text().splitlines()[:-1]) + "\n")
    import hashlib

    meta.update(size=meta["size"] - 1, sha256=hashlib.sha256(vocab_txt.read_bytes()).hexdigest())
    (run / "vocab" / "vocab.json").write_text(json.dumps(meta))
    assert main(["evaluate", str(run)]) == 1
    assert "does not belong to this model" in capsys.readouterr().err


def test_evaluate_a_missing_or_corrupt_run(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nope")]) == 1
    assert "no such run directory" in capsys.readouterr().err


@pytest.mark.parametrize("train_overrides", [
    {"precision": "mixed_float16"},  # LossScaleOptimizer path
    {"precision": "mixed_bfloat16"},
    {"jit_compile": True},
    {"optimizer": "adamw", "weight_decay": 0.01, "schedule": "cosine", "warmup_steps": 2},
    {"optimizer": "sgd", "learning_rate": 1.0, "pipeline": {"mode": "stream", "batch_size": 8}},
])
def test_gpu_path_settings_train_on_cpu(tmp_path, corpus_file, train_overrides):
    metrics = train(tmp_path / "run", corpus_file, "tiny", TINY_MODEL,
                    tiny_train(**{"epochs": 2, "steps_per_epoch": 20, **train_overrides}), progress=False)
    assert metrics["status"] == "complete" and metrics["best"]["val_perplexity"] < 18  # uniform: ~22
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the run


def test_untied_model_with_sparse_embedding_gradients(tmp_path, corpus_file):
    metrics = train(tmp_path / "run", corpus_file, "tiny", {**TINY_MODEL, "tie_weights": False},
                    tiny_train(epochs=2), progress=False)
    assert metrics["best"]["val_perplexity"] < 4.0


def test_sparse_gradients_are_merged_before_clipping():
    import tensorflow as tf

    from keyboard_lm.training.loop import _merge_duplicates

    values = tf.ones([100, 4])
    sparse = tf.IndexedSlices(values, tf.zeros([100], tf.int64), tf.constant([10, 4], tf.int64))
    dense_norm = float(tf.norm(tf.convert_to_tensor(sparse)))
    assert dense_norm == pytest.approx(200.0)
    assert float(tf.linalg.global_norm([_merge_duplicates(sparse)])) == pytest.approx(dense_norm)


def test_time_budget_stops_after_validating(tmp_path, corpus_file):
    metrics = train(tmp_path / "run", corpus_file, "tiny", TINY_MODEL,
                    tiny_train(epochs=50, max_minutes=0.05), progress=False)
    assert metrics["status"] == "time_budget" and metrics["best"] is not None
