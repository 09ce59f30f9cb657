"""What ``kblm export --lexicon-size`` buys: reachable words, keystroke savings, bytes and time,
measured through the commands a user runs.

For each lexicon setting the script runs ``kblm export RUN --lexicon SOURCE [--lexicon-size N]
--out BUNDLE`` and ``kblm simulate BUNDLE --corpus C --limit 300 --json J``; after the first,
``kblm simulate ... --presage-train C`` measures Presage in the same run on the same text. "Reachable" is
the share of the text's words the strip could ever show, compounds of reachable words included
(docs/engine.md §4.1, §16). Load -> first strip is the median of nine fresh loads of the bundle
in this process (``open_engine`` then ``strip()``); the export and simulate columns are the
commands' wall times.

Run: ``python benchmarks/lexicon_sizes.py`` after benchmarks/cells.py (its nlp-corpus ``mobile``
run); the Brown run, ``mobile`` with the default vocabulary, is trained here if missing
(``kblm train --corpus brown --preset mobile --max-minutes 14``). ``--run CORPUS=RUN``,
repeatable, measures others. Writes benchmarks/results/lexicon_sizes.{json,md}; about 10
minutes per run (plus the training).
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.common import write_results  # noqa: E402
from benchmarks.engine_long_field import kblm  # noqa: E402

SENTENCES = 300
RUNS = [  # (corpus, run); the Brown run has the default 10,000-word vocabulary (cells.py's uses Bengio's)
    ("nlp-corpus", "runs/bench/cells-nlp-corpus-mobile"),
    ("brown", "runs/bench/lexicon-brown-mobile"),
]
TRAIN = {  # runs this script trains itself when they are missing: kblm train arguments
    "runs/bench/lexicon-brown-mobile": ["--corpus", "brown", "--preset", "mobile", "--max-minutes", 14],
}
SETTINGS = [  # (--lexicon, --lexicon-size): none, the training text's words, then wordfreq's list added
    ("none", None), ("train", None), ("wordfreq:en", 50_000), ("wordfreq:en", 100_000),
    ("wordfreq:en", 200_000), ("wordfreq:en", 300_000), ("wordfreq:en", 400_000),
]
LOADS = 9


def timed(*args):
    """Runs the kblm command (benchmarks.engine_long_field.kblm: exits if it fails); its wall seconds."""
    started = time.perf_counter()
    kblm(*args)
    return time.perf_counter() - started


def load_ms(bundle):
    """Median ms of LOADS fresh loads -> first strip."""
    from keyboard_lm.phone.engine import open_engine

    times = []
    for _ in range(LOADS):
        started = time.perf_counter()
        open_engine(bundle).strip()
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def label(source, size):
    if source == "none":
        return "no lexicon"
    if source == "train":
        return "training text"
    return f"training text + {source}, {size:,} words"


def figures(report):
    return {"reachable": 100 * report["reachable"] if report.get("reachable") is not None else "",
            "ksr": 100 * report["ksr"], "top3": 100 * report["top3"],
            "p50_ms": report["latency_ms"]["p50"], "p99_ms": report["latency_ms"]["p99"]}


def measure(corpus, run, work, limit):
    rows, text = [], f"{corpus} test, first {limit}"
    for i, (source, size) in enumerate(SETTINGS):
        bundle, report = work / f"bundle-{i}", work / f"report-{i}.json"
        export = ["export", run, "--lexicon", source, "--out", bundle] + (["--lexicon-size", size] if size else [])
        export_s = timed(*export)
        simulate_s = timed("simulate", bundle, "--corpus", corpus, "--limit", limit, "--json", report)
        manifest = json.loads((bundle / "manifest.json").read_text())
        lexicon = manifest.get("lexicon")
        rows.append({"text": text, "engine": label(source, size), "words": f"{lexicon['words']:,}" if lexicon else "0",
                     "lexicon_kb": manifest["files"]["lexicon.tsv.gz"]["bytes"] / 1000 if lexicon else 0.0,
                     **figures(json.loads(report.read_text())[0]), "load_ms": load_ms(bundle),
                     "export_s": export_s, "simulate_s": simulate_s})
        print(rows[-1], flush=True)
        if i == 0:  # Presage on the same text, in this run (its own command: the timings above stay ours)
            kblm("simulate", bundle, "--corpus", corpus, "--limit", limit, "--json", work / "presage.json",
                 "--presage-train", corpus)
            presage = json.loads((work / "presage.json").read_text())[-1]
            rows.append({"text": text, "engine": presage["predictor"], **figures(presage)})
            print(rows[-1], flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", metavar="CORPUS=RUN", help="runs to measure (default: "
                        + ", ".join(f"{c}={r}" for c, r in RUNS) + ")")
    parser.add_argument("--limit", type=int, default=SENTENCES, help=f"test sentences (default {SENTENCES})")
    args = parser.parse_args(argv)
    runs = [tuple(item.split("=", 1)) for item in args.run] if args.run else RUNS
    for _, run in runs:
        if not os.path.isdir(run):
            if run not in TRAIN:
                sys.exit(f"{run}: no such run (benchmarks/cells.py trains it)")
            kblm("train", *TRAIN[run], "--out", run)
    rows = []
    with tempfile.TemporaryDirectory(prefix="kblm-lexicon-sizes-") as work:
        for corpus, run in runs:
            rows += measure(corpus, run, Path(work) / corpus, args.limit)
    name = "lexicon_sizes" if args.limit == SENTENCES else "lexicon_sizes_quick"
    print(write_results(name, rows, [
        ("text", "text"), ("engine", "lexicon (kblm export --lexicon, --lexicon-size)"), ("words", "words"),
        ("lexicon_kb", "lexicon.tsv.gz KB"), ("reachable", "reachable words %"), ("ksr", "KSR %"),
        ("top3", "top-3 %"), ("p50_ms", "p50 ms/key"), ("p99_ms", "p99 ms/key"),
        ("load_ms", "load → first strip ms (median of 9)"), ("export_s", "kblm export s"),
        ("simulate_s", "kblm simulate s")]))


if __name__ == "__main__":
    main()
