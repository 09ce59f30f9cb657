"""Keystroke savings, next-word accuracy and per-keystroke latency: keyboard-lm's
dynamic-int8 bundles against Presage (trigram on the same train split), in the same
simulator on the same text. Also bundle load -> first suggestion time.

Run: ``python benchmarks/keystroke_savings.py`` after benchmarks/cells.py (its four runs,
30 minutes each: ``mobile`` and ``cifg`` on Brown, Bengio's protocol and vocabulary, and on
nlp-corpus, the default 10,000 words). Writes benchmarks/results/keystroke_savings.{json,md}. Each bundle runs
without a lexicon, with the training text's (``--lexicon train``) and with wordfreq's
100,000 words added (docs/engine.md §16); "reachable" is the share of the text's words the
strip could ever show. ``--limit N`` (first N sentences) and ``--setup CORPUS=RUN`` make a
quick run (results then go to keystroke_savings_quick.*, not the table).
Reference: Presage's own simulator reports KSR 40.3% on the first 300 Brown test sentences.
"""
import argparse
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.common import write_results  # noqa: E402

SENTENCES = 300
SETUPS = [  # (corpus, run trained by benchmarks/cells.py), each as a dynamic_int8 bundle
    ("brown", "runs/bench/cells-brown-mobile"),
    ("brown", "runs/bench/cells-brown-cifg"),
    ("nlp-corpus", "runs/bench/cells-nlp-corpus-mobile"),
    ("nlp-corpus", "runs/bench/cells-nlp-corpus-cifg"),
]


def model_label(run):
    """'lstm 256' or 'cifg 560->96', from the run's config."""
    import json

    with open(os.path.join(run, "config.json")) as f:
        model = json.load(f)["model"]
    projection = (model.get("cell_options") or {}).get("projection")
    units = "+".join(str(u) for u in model["rnn_units"])
    return f"{model['cell']} {units}" + (f"->{projection}" if projection else "")


def load_time(bundle_dir):
    from keyboard_lm.phone.engine import open_engine

    started = time.perf_counter()
    engine = open_engine(bundle_dir)
    engine.strip()
    return 1000 * (time.perf_counter() - started), engine


def with_lexicon(bundle_dir, corpus, run, source, size=None):
    """A copy of the bundle with a lexicon (export.lexicon), the same model: only the lexicon differs."""
    from export.lexicon import add_to_bundle, build_lexicon, parse_source
    from keyboard_lm.training.run import load_run

    kind, _ = parse_source(source)
    target = f"{bundle_dir}-lexicon-{source.replace(':', '-')}"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(bundle_dir, target)
    entries = build_lexicon(corpus.splits["train"], load_run(run).vocab, source, size)
    add_to_bundle(target, entries, ["train"] + ([source] if kind == "wordfreq" else []))
    return target, len(entries)


def main(argv=None):
    from data_pipeline.corpora import load_corpus
    from export.exporter import export_run
    from keyboard_lm.phone.engine import open_engine
    from keyboard_lm.harness.presage import presage_predictor_for
    from keyboard_lm.harness.simulator import EnginePredictor, simulate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=SENTENCES, help=f"test sentences (default {SENTENCES})")
    parser.add_argument("--setup", action="append", metavar="CORPUS=RUN", help="replace the runs (quick runs)")
    args = parser.parse_args(argv)
    setups = [tuple(item.split("=", 1)) for item in args.setup] if args.setup else SETUPS
    quick = args.limit != SENTENCES or bool(args.setup)
    rows = []
    presage_done = set()
    for corpus_name, run in setups:
        bundle_dir = os.path.join("runs/bench", f"ksr-{os.path.basename(run)}-bundle")
        export_run(run, "dynamic_int8", bundle_dir, lexicon="none")
        corpus = load_corpus(corpus_name)
        messages = corpus.splits["test"][:args.limit]
        text = f"{corpus_name} test, first {args.limit}"
        first_ms, engine = load_time(bundle_dir)
        setups_here = [(EnginePredictor(engine, f"keyboard-lm {model_label(run)} dynamic_int8, no lexicon"),
                        first_ms)]
        if corpus_name not in presage_done:  # what the no-repeat strip adds, once per text
            setups_here.append((EnginePredictor(open_engine(bundle_dir, no_repeat=False),
                                                "  same, re-offering passed-over words"), ""))
        for source, size, label in (("train", None, "training-text lexicon"),
                                    ("wordfreq:en", 100_000, "training text + wordfreq:en, 100k words")):
            lexicon_dir, words = with_lexicon(bundle_dir, corpus, run, source, size)
            ms, lexicon_engine = load_time(lexicon_dir)
            size_bytes = os.path.getsize(os.path.join(lexicon_dir, "lexicon.tsv.gz"))
            setups_here.append((EnginePredictor(lexicon_engine, f"  same + {label} ({words:,} words, "
                                                f"{size_bytes:,} bytes)"), ms))
        if corpus_name not in presage_done:
            setups_here.append((presage_predictor_for(corpus_name), ""))
            presage_done.add(corpus_name)
        for predictor, load_ms in setups_here:
            report = simulate(predictor, messages, progress=False)
            reachable = report.get("reachable")
            rows.append({"text": text, "engine": report["predictor"],
                         "ksr": 100 * report["ksr"], "top1": 100 * report["top1"], "top3": 100 * report["top3"],
                         "reachable": "" if reachable is None else 100 * reachable,
                         "p50_ms": report["latency_ms"]["p50"], "p99_ms": report["latency_ms"]["p99"],
                         "load_ms": load_ms})
            print(rows[-1], flush=True)
    print(write_results("keystroke_savings_quick" if quick else "keystroke_savings", rows, [
        ("text", "text"), ("engine", "engine"), ("ksr", "KSR %"), ("reachable", "reachable words %"),
        ("top1", "top-1 %"), ("top3", "top-3 %"), ("p50_ms", "p50 ms/key"), ("p99_ms", "p99 ms/key"),
        ("load_ms", "load → first strip ms")]))


if __name__ == "__main__":
    main()
