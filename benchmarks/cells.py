"""Gboard's CIFG + projection cell against the `mobile` LSTM at the same parameter budget and
the same CPU budget: test perplexity, top-1/top-3, keystroke savings, bundle size and step
latency, on Brown (Bengio et al.'s protocol, stream training) and nlp-corpus (message mode).

Each corpus's two runs train at the same time, each pinned to its own core (so they share the
machine's load alike; on a busy machine neither side is favoured), for the same wall-clock
budget. Both are then evaluated on the test split, exported as dynamic_int8 bundles, replayed
in the keystroke simulator (first 300 test sentences), and their step latency is measured in
LiteRT on one thread, alternating the two bundles in blocks.

Run: ``python benchmarks/cells.py [--minutes 30] [--only brown]`` (about 75 minutes). Trains into
runs/bench/cells-CORPUS-CELL (resumable). Writes benchmarks/results/cells.{json,md}.
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks.common import RESULTS, write_results  # noqa: E402

RUNS = "runs/bench"
SENTENCES = 300
# The same budget as `mobile` (1.356M parameters at a 10k vocabulary): 560 CIFG units
# projected to 96 have 1.357M. Hard et al. 2018 ran 670 -> 96 at 1.4M.
CELLS = {"mobile": {}, "cifg": {"cell": "cifg", "rnn_units": [560], "cell_options": {"projection": 96}}}


def corpus_spec(corpus):
    from data_pipeline.tokenization import TokenizerOptions
    from data_pipeline.vocab import VocabularyOptions

    if corpus == "brown":  # Bengio et al.'s protocol: their vocabulary rule, case kept, stream
        return dict(vocab=VocabularyOptions.bengio(), tokenizer=TokenizerOptions(lowercase=False),
                    train={"epochs": 100, "pipeline": {"mode": "stream", "batch_size": 20, "sequence_length": 35}})
    return dict(vocab=VocabularyOptions(), tokenizer=TokenizerOptions(), train={"epochs": 100})


def run_dir(corpus, cell):
    return os.path.join(RUNS, f"cells-{corpus}-{cell}")


def train_one(corpus, cell, minutes):
    """Child process: one training run (resumed if it exists)."""
    from keyboard_lm.training.train import train

    spec = corpus_spec(corpus)
    out = run_dir(corpus, cell)
    resume = os.path.exists(os.path.join(out, "config.json"))
    started = time.monotonic()
    metrics = train(out, corpus, "mobile", CELLS[cell], {**spec["train"], "max_minutes": minutes},
                    spec["vocab"], spec["tokenizer"], resume=resume, progress=False)
    with open(os.path.join(out, "bench-train.json"), "w") as f:
        json.dump({"status": metrics["status"], "wall_minutes": (time.monotonic() - started) / 60,
                   "parameters": metrics["parameters"], "best": metrics.get("best")}, f)


def train_pair(corpus, minutes):
    """Both cells at once, each pinned to one core; waits for both."""
    children = []
    cores = sorted(os.sched_getaffinity(0))
    for i, cell in enumerate(CELLS):
        if os.path.exists(os.path.join(run_dir(corpus, cell), "bench-train.json")):
            continue
        core = {cores[i % len(cores)]}
        children.append(subprocess.Popen(
            [sys.executable, "-u", __file__, "--train-one", f"{corpus}:{cell}", "--minutes", str(minutes)],
            preexec_fn=lambda core=core: os.sched_setaffinity(0, core)))
    failed = [c.args for c in children if c.wait() != 0]
    if failed:
        raise SystemExit(f"training failed: {failed}")


def step_latencies(bundles, rounds=10, block=300):
    """p50/p99 ms per step of each bundle in LiteRT (one thread), alternating blocks."""
    from keyboard_lm.phone.bundle import load_bundle

    runners = {name: load_bundle(path).runner(num_threads=1) for name, path in bundles.items()}
    times = {name: [] for name in runners}
    tokens = np.random.default_rng(0).integers(4, 9_000, block)
    for round_ in range(rounds):
        for name, runner in runners.items():
            runner.reset()
            for token in tokens:
                started = time.perf_counter()
                runner.step(int(token))
                if round_:  # the first round warms up
                    times[name].append(time.perf_counter() - started)
    return {name: (1000 * float(np.percentile(t, 50)), 1000 * float(np.percentile(t, 99)))
            for name, t in times.items()}


def measure(corpus):
    from data_pipeline.corpora import load_corpus
    from export.exporter import export_run
    from keyboard_lm.phone.engine import open_engine
    from keyboard_lm.phone.simulator import EnginePredictor, simulate
    from keyboard_lm.training.evaluate import evaluate_run

    messages = load_corpus(corpus).splits["test"][:SENTENCES]
    rows, bundles = [], {}
    for cell in CELLS:
        run = run_dir(corpus, cell)
        trained = json.load(open(os.path.join(run, "bench-train.json")))
        config = json.load(open(os.path.join(run, "config.json")))
        test = evaluate_run(run, "test", progress=False)
        bundles[cell] = os.path.join(run, "bundle-dynamic_int8")
        manifest = export_run(run, "dynamic_int8", bundles[cell])
        report = simulate(EnginePredictor(open_engine(bundles[cell]), cell), messages, progress=False)
        model = config["model"]
        rows.append({"corpus": corpus, "cell": cell,
                     "model": f"{model['cell']} {model['rnn_units']}" + (
                         f" -> {model['cell_options']['projection']}" if model.get("cell_options") else ""),
                     "parameters": trained["parameters"], "status": trained["status"],
                     "train_minutes": trained["wall_minutes"], "best_epoch": (trained["best"] or {}).get("epoch"),
                     "test_perplexity": test["perplexity"], "test_top1": 100 * test["top1"],
                     "test_top3": 100 * test["top3"], "eval_mode": test["mode"], "ksr": 100 * report["ksr"],
                     "strip_top3": 100 * report["top3"],
                     "bundle_mb": manifest["files"]["model.tflite"]["bytes"] / 1e6})
    for cell, (p50, p99) in step_latencies(bundles).items():
        next(r for r in rows if r["cell"] == cell).update(step_p50_ms=p50, step_p99_ms=p99)
    for row in rows:
        print(row, flush=True)
    return rows


def training_log(row):
    """From the run's per-epoch log: tokens trained in all, and validation perplexity after the
    first epoch (the two cells at equal tokens; the time budget may give them different totals)."""
    import csv

    run = run_dir(row["corpus"], row["cell"])
    with open(os.path.join(run, "logs", "train.csv")) as f:
        epochs = list(csv.DictReader(f))
    with open(os.path.join(run, "config.json")) as f:
        budget = json.load(f)["train"]["max_minutes"]
    return {"budget_minutes": budget, "tokens_trained": int(sum(float(e["tokens"]) for e in epochs)),
            "epoch1_val_perplexity": float(epochs[0]["val_perplexity"]) if epochs else None}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="training budget of every run")
    parser.add_argument("--only", help="brown or nlp-corpus ('' : rewrite the table from the results)")
    parser.add_argument("--train-one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train_one:
        corpus, cell = args.train_one.split(":")
        return train_one(corpus, cell, args.minutes)
    previous = RESULTS / "cells.json"
    rows = json.loads(previous.read_text())["rows"] if previous.exists() else []
    for corpus in (args.only.split(",") if args.only is not None else ("brown", "nlp-corpus")):
        if corpus:
            train_pair(corpus, args.minutes)
            rows = [r for r in rows if r["corpus"] != corpus] + measure(corpus)
    rows = [{**row, **training_log(row)} for row in rows]
    print(write_results("cells", rows, [
        ("corpus", "text"), ("model", "cell"), ("parameters", "parameters"), ("budget_minutes", "minutes (1 core)"),
        ("tokens_trained", "tokens trained"),
        ("epoch1_val_perplexity", "valid ppl after epoch 1"), ("best_epoch", "best epoch"),
        ("test_perplexity", "test ppl"), ("test_top1", "top-1 %"), ("test_top3", "top-3 %"), ("ksr", "KSR %"),
        ("strip_top3", "strip top-3 %"), ("bundle_mb", "int8 model MB"), ("step_p50_ms", "step p50 ms"),
        ("step_p99_ms", "step p99 ms")],
        {"sentences": SENTENCES,
         "note": "each corpus's two runs trained at once, one core each"}))


if __name__ == "__main__":
    main()
