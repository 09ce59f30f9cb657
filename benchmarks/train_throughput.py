"""Training throughput (tokens/s) on Brown train: PyTorch's word_language_model recipe, the
``kblm train`` command and the bare train step, alternated in one run on the same data.

Run: ``python benchmarks/train_throughput.py [--quick] [--rounds R] [--steps N]``. Writes
benchmarks/results/train_throughput.{json,md}; the table's notes name the CPU.

Sides, each in a fresh subprocess, in turn (the order rotates every round), R rounds:

- ``PyTorch``: ``benchmarks/peers/wlm_torch.py``, our own PyTorch implementation of the
  word_language_model defaults (2x200 LSTM, untied, 20x35 stream batches, SGD lr 20, clip
  0.25, dropout 0.2) fed the id stream ``kblm train`` builds (Brown, Bengio vocabulary, case
  kept: 17,844 words). Needs the ``peers`` extra; without torch its row is skipped (one line).
- ``kblm train``: the real command with the same model and flags (``--steps-per-epoch``
  warm-up + N, one validation batch); its run's epoch log gives two rates: ``steady`` (the
  loop after its first ``STEADY_AFTER`` steps) and ``epoch`` (every step, tracing included).
- ``bare step``: ``Steps.train_step`` alone in a Python loop (no callbacks, no data
  iterator bookkeeping beyond ``next``), warm-up then N steps: the command's ceiling.
- ``kblm train, oneDNN off`` (the peer model only): the command with
  ``TF_ENABLE_ONEDNN_OPTS=0``, TensorFlow's own choice on CPUs without AVX512-VNNI/BF16/AMX
  before ``keyboard_lm`` asked for oneDNN (see ``keyboard_lm/__init__.py``); steady rate.

Each side times N steps after a warm-up of the same length; a row reports the median over
rounds (and min, max); ``x PyTorch`` and ``x bare step`` are ratios of those medians, so
both sides of a ratio come from the same run. The ``mobile`` preset (message mode) has the
command and bare-step rows only.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.common import cpu_line, write_results  # noqa: E402
from benchmarks.peers import wlm_torch  # noqa: E402  (TF-free; imports torch only in its subprocess)

WARMUP = 10  # untimed steps on every side (kblm train: keyboard_lm.training.loop.STEADY_AFTER)
PEER_FLAGS = ["--corpus", "brown", "--bengio", "--no-lowercase", "--embedding-dim", "200",
              "--rnn-units", "200,200", "--dropout", "0.2", "--untie", "--optimizer", "sgd",
              "--learning-rate", "20", "--clip-norm", "0.25", "--schedule", "constant",
              "--mode", "stream", "--batch-size", "20", "--sequence-length", "35"]
MOBILE_FLAGS = ["--corpus", "brown", "--preset", "mobile"]


def peer_configs():
    """(name, kblm train flags, vocabulary builder, model config, train config) per configuration;
    the bare step builds the same model as the flags."""
    from data_pipeline.pipeline_config import PipelineConfig
    from data_pipeline.tokenization import TokenizerOptions
    from data_pipeline.vocab import VocabularyOptions, build_vocabulary
    from keyboard_lm.training.config import ModelConfig, TrainConfig, preset

    def bengio(corpus):
        return build_vocabulary(corpus, VocabularyOptions.bengio(), TokenizerOptions(lowercase=False),
                                progress=False)

    def default(corpus):
        return build_vocabulary(corpus, progress=False)

    peer_model = ModelConfig(embedding_dim=200, rnn_units=(200, 200), dropout=0.2, tie_weights=False)
    peer_train = TrainConfig(optimizer="sgd", learning_rate=20.0, clip_norm=0.25, schedule="constant",
                             pipeline=PipelineConfig(mode="stream", batch_size=20, sequence_length=35))
    return {"pytorch-peer": (PEER_FLAGS, bengio, peer_model, peer_train),
            "mobile": (MOBILE_FLAGS, default, *preset("mobile"))}


def bare_step(name, steps, warmup):
    """Tokens/s of ``Steps.train_step`` alone (this process: run as ``--bare NAME``)."""
    import dataclasses

    import keras
    import tensorflow as tf

    from data_pipeline.corpora import load_corpus
    from data_pipeline.dataset import make_dataset
    from keyboard_lm.training.loop import Steps, make_optimizer
    from keyboard_lm.training.model import build_training_model

    _, vocabulary, model_config, train_config = peer_configs()[name]
    corpus = load_corpus("brown")
    vocab = vocabulary(corpus)
    model_config = dataclasses.replace(model_config, vocabulary_size=len(vocab))
    keras.mixed_precision.set_global_policy(train_config.precision)
    keras.utils.set_random_seed(train_config.seed)
    strategy = tf.distribute.get_strategy()
    pipeline = train_config.pipeline
    batches = iter(make_dataset(corpus.splits["train"], vocab, pipeline, training=True).repeat())
    model = build_training_model(model_config, pipeline)
    model.compile(optimizer=make_optimizer(train_config, 1000))
    model.optimizer.build(model.trainable_variables)
    train = Steps(model, model_config, strategy, train_config.clip_norm, train_config.jit_compile)
    stream = pipeline.mode == "stream"
    states = train.replica_zero_states(pipeline.batch_size) if stream else None
    tokens, started = 0.0, None
    for step in range(warmup + steps):
        if step == warmup:
            tokens, started = 0.0, time.perf_counter()
        sums, next_states = train.train_step(next(batches), states)
        states = next_states if stream else None
        tokens += float(sums["tokens"])  # real targets (message mode pads); also waits for the step
    return {"tokens_per_second": tokens / (time.perf_counter() - started), "steps": steps}


def _run(command, what, env=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), **(env or {})}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{what} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def run_peer(ids_path, vocabulary_size, steps, warmup):
    out = _run([sys.executable, "-m", "benchmarks.peers.wlm_torch", "--ids", str(ids_path),
                "--vocabulary-size", str(vocabulary_size), "--steps", str(steps), "--warmup", str(warmup)],
               "the PyTorch peer")
    return json.loads(out.strip().splitlines()[-1])


def run_command(flags, steps, warmup, scratch, env=None):
    """``kblm train`` with ``flags``, warm-up + ``steps`` steps, one epoch, one validation batch
    (``env``: variables to add to the command's environment)."""
    out = Path(tempfile.mkdtemp(dir=scratch)) / "run"
    config = out.parent / "config.json"
    config.write_text(json.dumps({"train": {"validation_steps": 1}}))
    _run([sys.executable, "-c", "import sys; from keyboard_lm.cli import main; sys.exit(main())", "train",
          *flags, "--steps-per-epoch", str(warmup + steps), "--epochs", "1", "--config", str(config),
          "--out", str(out)], "kblm train", env)
    final = json.loads((out / "metrics.json").read_text())["final"]
    return {"steady": final["steady_tokens_per_second"], "epoch": final["tokens_per_second"]}


def run_bare(name, steps, warmup):
    out = _run([sys.executable, str(Path(__file__).resolve()), "--bare", name, "--steps", str(steps),
                "--warmup", str(warmup)], f"the bare step of {name}")
    return json.loads(out.strip().splitlines()[-1])


def write_ids(scratch):
    """The Bengio-vocabulary train stream (what ``kblm train --bengio --no-lowercase`` trains
    on) as int32 .npy for the PyTorch peer; returns (path, vocabulary size)."""
    import numpy as np

    from data_pipeline.corpora import load_corpus
    from data_pipeline.dataset import stream_ids

    corpus = load_corpus("brown")
    vocab = peer_configs()["pytorch-peer"][1](corpus)
    path = Path(scratch) / "brown_train_ids.npy"
    np.save(path, stream_ids(corpus.splits["train"], vocab).astype(np.int32))
    return path, len(vocab)


def _stats(rates):
    return {"tokens_per_second": statistics.median(rates), "min": min(rates), "max": max(rates),
            "runs": len(rates)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 20 steps (smoke run; not recorded)")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of all sides (>= 3 for the record)")
    parser.add_argument("--steps", type=int, default=150, help="timed steps per side and round")
    parser.add_argument("--only", help="comma-separated configurations (pytorch-peer, mobile)")
    parser.add_argument("--bare", help=argparse.SUPPRESS)  # internal: one bare-step measurement
    parser.add_argument("--warmup", type=int, default=WARMUP, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare:
        print(json.dumps(bare_step(args.bare, args.steps, args.warmup)))
        return 0
    steps = 20 if args.quick else args.steps
    names = args.only.split(",") if args.only else ["pytorch-peer", "mobile"]
    torch_side = "pytorch-peer" in names and wlm_torch.available()
    if "pytorch-peer" in names and not torch_side:
        print(wlm_torch.SKIPPED, flush=True)
    rates = {}  # (config, side) -> [tokens/s per round]
    with tempfile.TemporaryDirectory(prefix="kblm-train-throughput-") as scratch:
        sides = []
        if torch_side:
            ids_path, vocabulary_size = write_ids(scratch)
            sides.append(("pytorch-peer", "PyTorch", lambda: {
                "": run_peer(ids_path, vocabulary_size, steps, args.warmup)["tokens_per_second"]}))
        for name in names:
            flags = peer_configs()[name][0]
            sides.append((name, "kblm train", lambda flags=flags: run_command(flags, steps, args.warmup, scratch)))
            sides.append((name, "bare step", lambda name=name: {
                "": run_bare(name, steps, args.warmup)["tokens_per_second"]}))
            if name == "pytorch-peer":  # what the command ran at before it asked for oneDNN's kernels
                sides.append((name, "kblm train, oneDNN off", lambda flags=flags: {"steady": run_command(
                    flags, steps, args.warmup, scratch, {"TF_ENABLE_ONEDNN_OPTS": "0"})["steady"]}))
        for round_ in range(args.rounds):
            turn = round_ % len(sides)  # rotate the order so no side always runs first
            for name, side, measure in sides[turn:] + sides[:turn]:
                for variant, rate in measure().items():
                    key = (name, f"{side} ({variant})" if variant else side)
                    rates.setdefault(key, []).append(rate)
                    print(f"round {round_ + 1}/{args.rounds}: {key[0]}, {key[1]}: {rate:,.0f} tokens/s", flush=True)
    rows = []
    for (name, side), values in rates.items():
        row = {"config": name, "side": side, **_stats(values)}
        torch_rates, bare_rates = rates.get((name, "PyTorch")), rates.get((name, "bare step"))
        row["vs_pytorch"] = (f"{row['tokens_per_second'] / statistics.median(torch_rates):.2f}x"
                             if torch_rates else "")
        row["vs_bare"] = (f"{row['tokens_per_second'] / statistics.median(bare_rates):.2f}x"
                          if bare_rates and side.startswith("kblm train (") else "")
        rows.append(row)
    cpu = cpu_line()
    notes = [f"CPU: {cpu}. {args.rounds} rounds, each side in turn (order rotated per round), "
             f"{args.warmup} warm-up + {steps} timed steps per side and round; median over rounds."]
    if not torch_side and "pytorch-peer" in names:
        notes.append(wlm_torch.SKIPPED)
    columns = [("config", "configuration"), ("side", "side"), ("tokens_per_second", "tokens/s (median)"),
               ("min", "min"), ("max", "max"), ("vs_pytorch", "x PyTorch (same run)"),
               ("vs_bare", "x bare step")]
    extra = {"cpu_line": cpu, "rounds": args.rounds, "steps": steps, "warmup": args.warmup,
             "raw": {f"{n} | {s}": v for (n, s), v in rates.items()}}
    if args.quick:  # a smoke run is not the recorded figure
        print(json.dumps({"rows": rows, **extra}, indent=2))
        return 0
    print(write_results("train_throughput", rows, columns, extra, notes=notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
