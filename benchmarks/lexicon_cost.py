"""What a 100,000-word lexicon costs on the phone's side: its size on disk, bundle load -> first
strip, and per-keystroke latency (type a character, then read the strip: what the user waits
for), the same bundle with and without the lexicon, alternating in one run.

The lexicon is the bundle's own training-text words plus wordfreq's English list up to 100,000
words when ``wordfreq`` is installed (``pip install .[lexicon]``), else synthetic words with
Zipf counts. Text typed: the first 100 Brown test sentences.

Needs a bundle: ``--bundle PATH``, else it trains and exports a small mobile one (50 steps,
dynamic_int8: only its size and cost matter here).

Run: ``python benchmarks/lexicon_cost.py [--bundle PATH]``. Writes
benchmarks/results/lexicon_cost.{json,md}.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks.common import write_results  # noqa: E402
from benchmarks.engine_long_field import bundle_path  # noqa: E402

WORDS = 100_000
SENTENCES = 100
ROUNDS = 3


def big_lexicon(bundle, size):
    """(word, count) pairs outside the bundle's vocabulary: wordfreq's English list, or synthetic."""
    from keyboard_lm.phone.bundle import load_bundle

    vocabulary = {w.lower() for w in load_bundle(bundle).vocab.tokens}
    try:
        from wordfreq import top_n_list, word_frequency

        words = [w for w in top_n_list("en", 3 * size) if w.lower() not in vocabulary][:size]
        return [(w, max(1, int(1e9 * word_frequency(w, "en")))) for w in words], "wordfreq:en"
    except ImportError:
        rng = np.random.default_rng(0)
        letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
        words = set()
        while len(words) < size:
            word = "".join(rng.choice(letters, rng.integers(4, 12)))
            if word not in vocabulary:
                words.add(word)
        return list(zip(sorted(words), (1e6 / np.arange(1, size + 1)).astype(int).tolist())), "synthetic"


def keystrokes(bundle_dir, messages):
    """Load -> first strip (ms), and per-keystroke ms (type + strip) over ``messages``."""
    from keyboard_lm.phone.bundle import load_bundle
    from keyboard_lm.phone.keyboard import KeyboardEngine

    started = time.perf_counter()
    engine = KeyboardEngine(load_bundle(bundle_dir))
    engine.strip()
    load_ms = 1000 * (time.perf_counter() - started)
    times = []
    for message in messages:
        engine.reset()
        for ch in message:
            started = time.perf_counter()
            engine.type(ch)
            engine.strip()
            times.append(time.perf_counter() - started)
    return load_ms, times


def main():
    from data_pipeline.corpora import load_corpus
    from export.lexicon import add_to_bundle
    from keyboard_lm.phone.lexicon import FILE

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", help="a bundle (default: train and export a small mobile one)")
    args = parser.parse_args()
    messages = load_corpus("brown").splits["test"][:SENTENCES]
    with tempfile.TemporaryDirectory() as work:
        base = bundle_path(args.bundle, work)
        plain, lexicon = Path(work) / "without", Path(work) / "with"
        shutil.copytree(base, plain)
        shutil.copytree(base, lexicon)
        if (plain / FILE).exists():  # the bundle's own lexicon: the plain copy goes without
            manifest = json.loads((plain / "manifest.json").read_text(encoding="utf-8"))
            manifest.pop("lexicon", None)
            manifest["files"].pop(FILE, None)
            (plain / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
            (plain / FILE).unlink()
        words, source = big_lexicon(base, WORDS)
        add_to_bundle(lexicon, words)
        size = (lexicon / FILE).stat().st_size
        results = {"without": ([], []), "with": ([], [])}
        for _ in range(ROUNDS):  # alternate, so both see the same machine
            for name, directory in (("without", plain), ("with", lexicon)):
                load_ms, times = keystrokes(directory, messages)
                results[name][0].append(load_ms)
                results[name][1].extend(times)
    rows = []
    for name, (loads, times) in results.items():
        ms = 1000 * np.array(times)
        rows.append({"bundle": f"{name} a {len(words):,}-word lexicon ({source})" if name == "with"
                     else "without a lexicon", "lexicon_bytes": size if name == "with" else 0,
                     "load_ms": float(np.median(loads)), "p50_ms": float(np.percentile(ms, 50)),
                     "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()), "keystrokes": len(ms)})
        print(rows[-1], flush=True)
    print(write_results("lexicon_cost", rows, [
        ("bundle", "bundle"), ("lexicon_bytes", "lexicon bytes"), ("load_ms", "load → first strip ms (median)"),
        ("p50_ms", "p50 ms/key"), ("p99_ms", "p99 ms/key"), ("max_ms", "max ms/key"), ("keystrokes", "keystrokes")],
        {"rounds": ROUNDS, "sentences": SENTENCES, "words": len(words), "source": source}))


if __name__ == "__main__":
    main()
