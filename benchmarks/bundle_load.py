"""Bundle load -> first strip, with and without a lexicon (issue 18 asks <= 200 ms with
100,000 words), and the user's ``kblm suggest BUNDLE TEXT`` end to end.

One model, three bundles: no lexicon, the training text's (``--lexicon train``) and the
training text's plus wordfreq's English list to 100,000 words (``with_lexicon`` of
benchmarks/keystroke_savings.py). Each round runs every variant once, alternating, so all
see the same machine:

- load -> first strip (``open_engine(bundle); engine.strip()``, as keystroke_savings'
  ``load_time``) in a new process: the first load (it also compiles the tokenizer's
  regexes and starts LiteRT, as an app's first field does) and a second, fresh load in the
  same process (the figure the issue and keystroke_savings quote), split into
  ``load_bundle`` (checks, vocabulary, lexicon, model) and the engine to its first strip;
- ``kblm suggest BUNDLE TEXT`` as a subprocess: wall time, Python start-up included.

Then the per-keystroke cost (type a character, read the strip) over the first test
messages of the bundle's corpus, twice per variant, alternating: loading faster must not
make keystrokes slower. ``--before DIR`` also times an earlier checkout's code (``git
archive COMMIT | tar -x -C DIR``) on the same bundles, alternating with this one.

Needs a bundle: ``--bundle PATH`` (its manifest names the run and corpus the lexicons are
built from), else it trains a mobile model on nlp-corpus for 2 minutes and exports it.

Run: ``python benchmarks/bundle_load.py [--bundle PATH] [--rounds N] [--before DIR]``.
Writes benchmarks/results/bundle_load.{json,md}.
"""
import argparse
import json
import os
import shutil
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
from benchmarks.engine_long_field import kblm  # noqa: E402
from benchmarks.keystroke_savings import with_lexicon  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 9
SENTENCES = 100
TEXT = "see you at the sta"  # what kblm suggest completes
LOADS = """
import json, sys, time
from keyboard_lm.phone.bundle import load_bundle
from keyboard_lm.phone.engine import open_engine
times = []
for _ in range(2):
    started = time.perf_counter()
    bundle = load_bundle(sys.argv[1])
    loaded = time.perf_counter()
    open_engine(bundle).strip()
    times.append([1000 * (loaded - started), 1000 * (time.perf_counter() - loaded)])
    del bundle
print(json.dumps(times))
"""  # two loads in one process: the first, then a fresh one (imports before both)
KEYS = """
import json, sys, time
from data_pipeline.corpora import load_corpus
from keyboard_lm.phone.engine import open_engine
engine, times = open_engine(sys.argv[1]), []
for message in load_corpus(sys.argv[2]).splits["test"][:int(sys.argv[3])]:
    engine.reset()
    for ch in message:
        started = time.perf_counter()
        engine.type(ch)
        engine.strip()
        times.append(1000 * (time.perf_counter() - started))
print(json.dumps(times))
"""  # per keystroke: type one character, read the strip


def python(code_root, *args):
    """Runs Python with ``code_root`` first on the path; returns (stdout, wall seconds)."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=code_root,
                            env=dict(os.environ, PYTHONPATH=str(code_root)))
    seconds = time.perf_counter() - started
    if result.returncode:
        sys.exit(f"python {' '.join(map(str, args))} failed:\n{result.stderr[-3000:]}")
    return result.stdout, seconds


def base_bundle(given, work):
    """(a copy of the bundle without a lexicon, its run directory, its corpus name)."""
    from keyboard_lm.phone.lexicon import FILE

    if given:
        source = Path(given)
    else:
        run, source = work / "run", work / "bundle"
        kblm("train", "--corpus", "nlp-corpus", "--preset", "mobile", "--epochs", 1, "--max-minutes", 2,
             "--out", run)
        kblm("export", run, "--quantize", "dynamic_int8", "--lexicon", "none", "--out", source, "--force")
    base = work / "base"
    shutil.copytree(source, base)
    manifest = json.loads((base / "manifest.json").read_text(encoding="utf-8"))
    if manifest.pop("lexicon", None):  # the bundle's own lexicon: the base goes without
        manifest["files"].pop(FILE, None)
        (base / FILE).unlink()
        (base / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return base, manifest["run"]["path"], manifest["run"]["corpus"]["spec"]


def main():
    from data_pipeline.corpora import load_corpus
    from keyboard_lm.phone.lexicon import FILE

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", help="a bundle (default: train 2 minutes on nlp-corpus and export)")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"loads per variant (default {ROUNDS})")
    parser.add_argument("--before", help="an earlier checkout whose code is timed too")
    args = parser.parse_args()
    codes = [("", ROOT)] + ([("before: ", Path(args.before).resolve())] if args.before else [])
    with tempfile.TemporaryDirectory() as work:
        base, run, corpus_name = base_bundle(args.bundle, Path(work))
        corpus = load_corpus(corpus_name)
        variants = [("no lexicon", base, 0)]
        for source, size, label in (("train", None, "training-text lexicon"),
                                    ("wordfreq:en", 100_000, "training text + wordfreq:en, 100k words")):
            directory, words = with_lexicon(str(base), corpus, run, source, size)
            variants.append((f"{label} ({words:,} words, {os.path.getsize(Path(directory) / FILE):,} bytes)",
                             Path(directory), words))
        measured = {(code, name): {"first": [], "bundle": [], "engine": [], "load": [], "suggest": []}
                    for code, _ in codes for name, _, _ in variants}
        for round_ in range(args.rounds):
            for code, root in codes:
                for name, directory, _ in variants:
                    first, (bundle_ms, engine_ms) = json.loads(python(root, "-c", LOADS, directory)[0])
                    kept = measured[code, name]
                    kept["first"].append(sum(first))
                    kept["bundle"].append(bundle_ms)
                    kept["engine"].append(engine_ms)
                    kept["load"].append(bundle_ms + engine_ms)
                    kept["suggest"].append(1000 * python(root, "-m", "keyboard_lm.cli", "suggest", directory, TEXT)[1])
            print(f"round {round_ + 1}/{args.rounds}", flush=True)
        typed = {(code, name): [] for code, _ in codes for name, _, _ in variants}
        for _ in range(2):  # alternate, as the loads
            for code, root in codes:
                for name, directory, _ in variants:
                    typed[code, name] += json.loads(python(root, "-c", KEYS, directory, corpus_name, SENTENCES)[0])
    rows = []
    for code, _ in codes:
        for name, _, words in variants:
            kept = measured[code, name]
            row = {"bundle": code + name, "words": words,
                   "load_ms": statistics.median(kept["load"]), "load_max_ms": max(kept["load"]),
                   "bundle_ms": statistics.median(kept["bundle"]), "engine_ms": statistics.median(kept["engine"]),
                   "first_ms": statistics.median(kept["first"]), "first_max_ms": max(kept["first"]),
                   "suggest_ms": statistics.median(kept["suggest"]), "suggest_max_ms": max(kept["suggest"])}
            ms = np.array(typed[code, name])
            row.update(p50_ms=float(np.percentile(ms, 50)), p99_ms=float(np.percentile(ms, 99)), keystrokes=len(ms))
            rows.append(row)
            print(rows[-1], flush=True)
    print(write_results("bundle_load", rows, [
        ("bundle", "bundle"), ("load_ms", "load → first strip ms (median)"), ("load_max_ms", "max"),
        ("bundle_ms", "of which load_bundle"), ("engine_ms", "engine + first strip"),
        ("first_ms", "first load in a process ms (median)"), ("first_max_ms", "max"),
        ("suggest_ms", "kblm suggest ms (median)"), ("suggest_max_ms", "max"),
        ("p50_ms", "p50 ms/key"), ("p99_ms", "p99 ms/key")],
        {"rounds": args.rounds, "sentences": SENTENCES, "corpus": corpus_name, "suggest_text": TEXT,
         "before": str(args.before) if args.before else None}))


if __name__ == "__main__":
    main()
