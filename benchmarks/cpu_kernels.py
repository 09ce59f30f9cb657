"""What asking TensorFlow for oneDNN's CPU kernels (``keyboard_lm/__init__.py``) changes in the
commands that share the training step and its metrics: ``kblm evaluate`` and ``kblm personalize``.

Each command runs with ``TF_ENABLE_ONEDNN_OPTS=1`` (what ``kblm`` sets on x86-64) and ``=0``
(TensorFlow's own choice on CPUs without AVX512-VNNI/BF16/AMX), alternating, ``--rounds`` times,
each in a fresh process; a row is the median wall time of the whole command (start-up
included) and what it reported, so a changed kernel that changed a result would show.
Training itself is benchmarks/train_throughput.py's ``oneDNN off`` row.

- ``kblm evaluate runs/bench/lexicon-brown-mobile --split test``: Brown test, ``mobile``
  (message mode); the run comes from benchmarks/lexicon_sizes.py.
- ``kblm personalize --base runs/bench/cells-nlp-corpus-mobile --texts USER``: the 3k-word user
  ``k-3k`` of benchmarks/personalization_small.py, fine-tune + guard + export + replay.

A missing run or user text skips its row with one line. Writes
benchmarks/results/cpu_kernels.{json,md}; about 15 minutes.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.common import cpu_line, write_results  # noqa: E402
from benchmarks.engine_long_field import kblm  # noqa: E402

EVAL_RUN = ROOT / "runs/bench/lexicon-brown-mobile"
BASE = ROOT / "runs/bench/cells-nlp-corpus-mobile"
USER = ROOT / "runs/bench/personal-small/users/k-3k.txt"
SETTINGS = {"oneDNN (kblm's default)": "1", "oneDNN off": "0"}


def evaluate(scratch, setting):
    report = Path(tempfile.mkdtemp(dir=scratch)) / "eval.json"
    kblm("evaluate", EVAL_RUN, "--split", "test", "--json", report, env={"TF_ENABLE_ONEDNN_OPTS": setting})
    result = json.loads(report.read_text())
    return f"perplexity {result['perplexity']:.3f}, top-3 {result['top3']:.4f}"


def personalize(scratch, setting):
    out = Path(tempfile.mkdtemp(dir=scratch)) / "user"
    kblm("personalize", "--base", BASE, "--texts", USER, "--out", out, env={"TF_ENABLE_ONEDNN_OPTS": setting})
    ksr = json.loads((out / "report.json").read_text())["ksr"]
    return f"KSR {100 * ksr['before']['ksr']:.1f} -> {100 * ksr['after']['ksr']:.1f}%"


COMMANDS = [("kblm evaluate (Brown test, mobile)", evaluate, [EVAL_RUN]),
            ("kblm personalize (user k-3k, nlp-corpus mobile)", personalize, [BASE, USER])]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternations of both settings per command")
    args = parser.parse_args(argv)
    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="kblm-cpu-kernels-") as scratch:
        for name, command, needs in COMMANDS:
            missing = [str(path.relative_to(ROOT)) for path in needs if not path.exists()]
            if missing:
                line = f"{name}: skipped, {', '.join(missing)} is missing (see this script's notes)"
                print(line, flush=True)
                notes.append(line)
                continue
            seconds, reported = {s: [] for s in SETTINGS}, {}
            for round_ in range(args.rounds):
                order = list(SETTINGS.items())[::1 if round_ % 2 == 0 else -1]  # alternate who goes first
                for label, setting in order:
                    started = time.perf_counter()
                    reported[label] = command(scratch, setting)
                    seconds[label].append(time.perf_counter() - started)
                    print(f"round {round_ + 1}/{args.rounds}: {name}, {label}: {seconds[label][-1]:.1f} s, "
                          f"{reported[label]}", flush=True)
            fast = statistics.median(seconds["oneDNN (kblm's default)"])
            for label in SETTINGS:
                median = statistics.median(seconds[label])
                rows.append({"command": name, "kernels": label, "seconds": round(median, 1),
                             "min": round(min(seconds[label]), 1), "max": round(max(seconds[label]), 1),
                             "vs_default": f"{median / fast:.2f}x", "reported": reported[label],
                             "runs": seconds[label]})
    columns = [("command", "command"), ("kernels", "TensorFlow kernels"), ("seconds", "wall s (median)"),
               ("min", "min"), ("max", "max"), ("vs_default", "time vs kblm's default"),
               ("reported", "what it reported")]
    cpu = cpu_line()
    notes.insert(0, f"CPU: {cpu}. {args.rounds} rounds, the two settings alternating (who goes first "
                    "alternates too); whole commands, start-up included.")
    print(write_results("cpu_kernels", rows, columns, {"cpu_line": cpu, "rounds": args.rounds}, notes=notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
