"""Keystroke savings, next-word accuracy and per-keystroke latency: keyboard-lm's mobile
dynamic-int8 bundle against Presage (trigram on the same train split), in the same
simulator on the same text. Also bundle load -> first suggestion time.

Run: ``python benchmarks/keystroke_savings.py`` after benchmarks/quality.py (it exports the
quality runs). Writes benchmarks/results/keystroke_savings.{json,md}.
Reference: Presage's own simulator reports KSR 40.3% on the first 300 Brown test sentences.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.common import write_results  # noqa: E402

SENTENCES = 300
SETUPS = {  # corpus -> run trained by benchmarks/quality.py
    "brown": "runs/bench/brown-bengio-mobile",
    "nlp-corpus": "runs/bench/nlp-corpus-mobile",
}


def load_time(bundle_dir):
    from keyboard_lm.phone.engine import open_engine

    started = time.perf_counter()
    engine = open_engine(bundle_dir)
    engine.strip()
    return 1000 * (time.perf_counter() - started), engine


def main():
    from data_pipeline.corpora import load_corpus
    from export.exporter import export_run
    from keyboard_lm.phone.engine import open_engine
    from keyboard_lm.phone.presage import presage_predictor_for
    from keyboard_lm.phone.simulator import EnginePredictor, simulate

    rows = []
    for corpus_name, run in SETUPS.items():
        bundle_dir = os.path.join("runs/bench", f"{corpus_name}-bundle")
        export_run(run, "dynamic_int8", bundle_dir)
        first_ms, engine = load_time(bundle_dir)
        messages = load_corpus(corpus_name).splits["test"][:SENTENCES]
        repeating = open_engine(bundle_dir, no_repeat=False)
        for predictor in (EnginePredictor(engine, "keyboard-lm mobile dynamic_int8"),
                          EnginePredictor(repeating, "  same, re-offering passed-over words"),
                          presage_predictor_for(corpus_name)):
            report = simulate(predictor, messages, progress=False)
            rows.append({"text": f"{corpus_name} test, first {SENTENCES}", "engine": report["predictor"],
                         "ksr": 100 * report["ksr"], "top1": 100 * report["top1"], "top3": 100 * report["top3"],
                         "p50_ms": report["latency_ms"]["p50"], "p99_ms": report["latency_ms"]["p99"],
                         "load_ms": first_ms if predictor.name.startswith("keyboard-lm") else ""})
            print(rows[-1], flush=True)
    print(write_results("keystroke_savings", rows, [
        ("text", "text"), ("engine", "engine"), ("ksr", "KSR %"), ("top1", "top-1 %"), ("top3", "top-3 %"),
        ("p50_ms", "p50 ms/key"), ("p99_ms", "p99 ms/key"), ("load_ms", "load → first strip ms")]))


if __name__ == "__main__":
    main()
