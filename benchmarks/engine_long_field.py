"""The keyboard engine's cost in a long text field: it must not grow with the text before the
cursor (the engine reads the last 2,000 characters, as the phone does).

Three measurements, on real text (the Brown test split, sentences joined by spaces into one line):

- ``kblm simulate`` on one line of 2k / 4k / 8k / 16k / 100k characters (what issue 16 timed:
  2.0 / 3.9 / 16.3 / 63.7 s, and 100k "did not finish in 12 minutes" before the bounded
  window), as a subprocess: wall time (start-up included) and the per-keystroke latency it
  reports. ``--before DIR``: also time DIR's ``kblm simulate`` (an earlier checkout, e.g.
  ``git archive COMMIT | tar -x -C DIR``) on the same lines up to 16k, on the same bundle;
- per keystroke (``set_text`` + ``strip``, in process) at the end of 2k / 10k / 100k-character
  fields: the field opens on the text, then the next 1,000 characters are typed, with a
  backspace after every 10th; p50 / p99 / max;
- a reset (a cursor jump) at the end of a 100k field: median of 9.

Needs a bundle: ``--bundle PATH``, else it trains and exports a small mobile one (the preset the
phone uses; 50 steps, int8: its quality does not matter here, only its size and cost).

Run: ``python benchmarks/engine_long_field.py [--bundle PATH] [--before DIR]``. Writes
benchmarks/results/engine_long_field.{json,md}.
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

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks.common import write_results  # noqa: E402

SIMULATE_LENGTHS = (2_000, 4_000, 8_000, 16_000, 100_000)
BEFORE_LENGTHS = (2_000, 4_000, 8_000, 16_000)  # the quadratic engine: 16k takes about a minute
FIELD_LENGTHS = (2_000, 10_000, 100_000)
TYPED = 1_000  # characters typed at the end of each field


def kblm(*args, cwd=None, env=None):
    """Runs the kblm command (``env``: variables added to its environment); exits if it fails."""
    extra = {**({"PYTHONPATH": str(cwd)} if cwd else {}), **(env or {})}
    result = subprocess.run([sys.executable, "-m", "keyboard_lm.cli", *map(str, args)], capture_output=True, text=True,
                            cwd=cwd, env=dict(os.environ, **extra) if extra else None)
    if result.returncode:
        sys.exit(f"kblm {' '.join(map(str, args))} failed:\n{result.stderr[-3000:]}")
    return result


def bundle_path(given, workdir):
    if given:
        return Path(given)
    run, bundle = Path(workdir) / "run", Path(workdir) / "bundle"
    kblm("train", "--corpus", "brown", "--preset", "mobile", "--epochs", 1, "--steps-per-epoch", 50, "--out", run)
    kblm("export", run, "--quantize", "dynamic_int8", "--out", bundle, "--force")
    return bundle


def brown_line(length):
    """One line of real text: Brown test sentences joined by spaces, cut at ``length`` characters."""
    from data_pipeline.corpora import load_corpus

    sentences = load_corpus("brown").splits["test"]
    text, i = "", 0
    while len(text) < length:
        text += sentences[i % len(sentences)] + " "
        i += 1
    return text[:length].rstrip()


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return "unknown"


def simulate_rows(bundle, text, workdir, before=None):
    rows = []
    for length in SIMULATE_LENGTHS:
        line = Path(workdir) / f"line{length}.txt"
        line.write_text(text[:length].rstrip() + "\n")
        report = Path(workdir) / f"report{length}.json"
        start = time.perf_counter()
        kblm("simulate", bundle, "--text", line.resolve(), "--json", report.resolve())
        seconds = time.perf_counter() - start
        result = json.loads(report.read_text())[0]
        before_seconds = ""
        if before and length in BEFORE_LENGTHS:
            start = time.perf_counter()
            kblm("simulate", Path(bundle).resolve(), "--text", line.resolve(), cwd=Path(before).resolve())
            before_seconds = time.perf_counter() - start
        rows.append({"what": f"`kblm simulate`, one line of {length:,} characters", "seconds": seconds,
                     "before": before_seconds, "keystrokes": result["keystrokes_with"], "p50": result["latency_ms"]["p50"],
                     "p99": result["latency_ms"]["p99"], "max": "", "ksr": f"{result['ksr']:.1%}"})
        print(rows[-1], flush=True)
    return rows


def keystroke_rows(engine, text):
    rows = []
    for length in FIELD_LENGTHS:
        field, typed = text[:length], text[length:length + TYPED]
        engine.reset(field)
        engine.strip()
        times, current = [], field
        for i, ch in enumerate(typed):
            current = current[:-1] if i % 10 == 9 else current + ch  # a backspace after every 10th key
            start = time.perf_counter()
            engine.set_text(current)
            engine.strip()
            times.append(time.perf_counter() - start)
        ms = np.array(times) * 1000
        rows.append({"what": f"keystroke at the end of a {length:,}-character field", "seconds": float(ms.sum() / 1000),
                     "before": "",
                     "keystrokes": len(ms), "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
                     "max": float(ms.max()), "ksr": ""})
        print(rows[-1], flush=True)
    return rows


def reset_row(engine, text):
    field = text[:FIELD_LENGTHS[-1]]
    times = []
    for _ in range(9):
        engine.reset()
        start = time.perf_counter()
        engine.reset(field)
        engine.strip()
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1000
    return {"what": f"reset (cursor jump) at the end of a {len(field):,}-character field", "seconds": float(ms.sum() / 1000),
            "before": "",
            "keystrokes": len(ms), "p50": statistics.median(ms), "p99": "", "max": float(ms.max()), "ksr": ""}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", help="an exported bundle (default: train and export a small mobile one)")
    parser.add_argument("--before", help="an earlier checkout whose kblm simulate to time too (up to 16k characters)")
    args = parser.parse_args()
    from keyboard_lm.phone.engine import open_engine
    from keyboard_lm.phone.keyboard import CONTEXT_CHARS

    with tempfile.TemporaryDirectory() as workdir:
        bundle = bundle_path(args.bundle, workdir)
        text = brown_line(max(SIMULATE_LENGTHS[-1], FIELD_LENGTHS[-1]) + TYPED + 100)
        rows = simulate_rows(bundle, text, workdir, args.before)
        engine = open_engine(bundle)
        rows += keystroke_rows(engine, text)
        rows.append(reset_row(engine, text))
        manifest = json.loads((bundle / "manifest.json").read_text())
    cpu = cpu_model()
    for row in rows:
        row["cpu"] = cpu
    print(write_results("engine_long_field", rows, [
        ("what", "measurement"), ("keystrokes", "keystrokes (or resets)"), ("seconds", "time s"),
        ("before", "before: time s"),
        ("p50", "p50 ms"), ("p99", "p99 ms"), ("max", "max ms"), ("ksr", "KSR"), ("cpu", "CPU (1 thread)")],
        extra={"context_chars": CONTEXT_CHARS, "typed_per_field": TYPED, "before": args.before,
               "bundle": {"model": manifest["model"], "quantization": manifest["quantization"]}}))


if __name__ == "__main__":
    main()
