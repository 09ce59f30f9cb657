"""Personalization for small users (3,000 and 8,000 words), with and without the forgetting guard.

Users: Brown's six fiction categories (never trained on by the base), each at two sizes.
A user of W words is the first halves of the category's samples, taken in order until W
words (each sample is ~2,000 words by one author, cut in two); the measure is on the second
halves of the same samples: the same authors' unseen text, as for a person. Base: the
nlp-corpus ``mobile`` run of benchmarks/cells.py (messages, 10,000 words, 30 minutes): a
keyboard's general model, and books are far from its text, so forgetting shows.

Each user is personalized with the defaults (the guard at 2%) and, where the guard backed
off, again with ``--max-forgetting none`` (elsewhere that run is the same one). Measured: model top-3 on up to 1,200 eval sentences; the
general loss change on the first 2,000 sentences of nlp-corpus test (the base's own kind of
text, and the guard's);
and, through the harness on 200 eval sentences (dynamic_int8 bundles, each with its
training-text lexicon): strip top-3 and KSR of the base, the base with the personal cache,
the guarded bundle, and the guarded bundle with the cache and the words the user teaches it
("everything on"). The cache weight is chosen per bundle from (0.05, 0.1, 0.2) on the held-out
tail of the user's text.

Run: ``python benchmarks/personalization_small.py`` (about five minutes a user on 2 cores;
resumable: a user's finished runs and row are reused; ``--categories`` for fewer users). Writes benchmarks/results/personalization_small.{json,md}.
"""
import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.common import write_results  # noqa: E402
from benchmarks.personalization import CATEGORIES, _halves, simulate_bundle, spread, write_lines  # noqa: E402
from keyboard_lm.personalize.report import CACHE_WEIGHTS  # noqa: E402  (the weights kblm personalize tries)


def everything_on(bundle_dir, messages, weight, prime):
    """The bundle with the personal cache primed on the user's text and learning their words."""
    from keyboard_lm.harness.simulator import EnginePredictor, simulate
    from keyboard_lm.phone.engine import open_engine

    engine = open_engine(bundle_dir, cache_weight=weight, prime=prime, learn_words=True)
    return simulate(EnginePredictor(engine), messages, progress=False)

BASE = Path("runs/bench/cells-nlp-corpus-mobile")
OUT = Path("runs/bench/personal-small")
SIZES = (3000, 8000)
EVAL_SENTENCES = 200
MODEL_SENTENCES = 1200
GENERAL_SENTENCES = 2000


def users(sizes):
    """{name: (the user's sentences, the same samples' second halves)}."""
    from data_pipeline.corpora import brown_documents, fetch
    from data_pipeline.tokenization import is_word, tokenize
    from data_pipeline.vocab import Vocabulary

    options = Vocabulary.load(BASE / "vocab").tokenizer_options  # words counted as the base counts them
    documents = {c: [] for c in CATEGORIES}
    for _, category, sentences, counts in brown_documents(fetch("brown")):
        if category in documents:
            documents[category].append(_halves(sentences, counts))
    out = {}
    for category, halves in documents.items():
        for size in sizes:
            first, second, words = [], [], 0
            for head, tail in halves:
                first.extend(head)
                second.extend(tail)
                words += sum(is_word(t) for s in head for t in tokenize(s, options))
                if words >= size:
                    break
            out[f"{category}-{size // 1000}k"] = (first, second)
    return out


def cache_weight(bundle, first):
    from keyboard_lm.personalize import PersonalizeOptions, split_user_text

    train, held = split_user_text(first, PersonalizeOptions().holdout)
    ksr = {w: simulate_bundle(bundle, held[:100], w, train)["ksr"] for w in CACHE_WEIGHTS}
    return max(ksr, key=ksr.get)


def personalized(name, guard, texts, evaluation, general):
    from keyboard_lm.personalize import PersonalizeOptions, finished, personalize

    run = OUT / ("guarded" if guard else "free") / name
    options = PersonalizeOptions(ksr_limit=0, max_forgetting=0.02 if guard else None)
    if finished(run, BASE, options):
        return run, json.loads((run / "report.json").read_text())
    return run, personalize(BASE, texts, run, options, eval_texts=evaluation, general=str(general), progress=False)


def measure(name, first, second, general, base_bundle):
    """The user's row; kept in OUT/rows/NAME.json (a rerun reuses it while its runs are unchanged)."""
    saved = OUT / "rows" / f"{name}.json"
    if saved.exists():
        return json.loads(saved.read_text())
    texts = write_lines(OUT / "users" / f"{name}.txt", first)
    evaluation = write_lines(OUT / "eval" / f"{name}.txt", spread(second, MODEL_SENTENCES))
    guarded_run, guarded = personalized(name, True, texts, evaluation, general)
    if guarded["forgetting_guard"]["backed_off"]:
        free_run, free = personalized(name, False, texts, evaluation, general)
    else:  # the guard let the fine-tune through: without it, the same run (same seed, same weights)
        free_run, free = guarded_run, guarded
    messages = spread(second, EVAL_SENTENCES)
    base_weight, weight = cache_weight(base_bundle, first), cache_weight(guarded_run / "bundle", first)
    sims = {"base": simulate_bundle(base_bundle, messages),
            "base+cache": simulate_bundle(base_bundle, messages, base_weight, first),
            "free": simulate_bundle(free_run / "bundle", messages),
            "guarded": simulate_bundle(guarded_run / "bundle", messages),
            "everything": everything_on(guarded_run / "bundle", messages, weight, first)}
    b = guarded["before"]
    guard = guarded["forgetting_guard"]
    row = {"user": name, "words": guarded["words"],
           "model_top3_base": 100 * b["eval"]["top3"], "model_top3_free": 100 * free["after"]["eval"]["top3"],
           "model_top3_guarded": 100 * guarded["after"]["eval"]["top3"],
           "general_loss_free": 100 * (free["after"]["general"]["loss"] / free["before"]["general"]["loss"] - 1),
           "general_loss_guarded": 100 * (guarded["after"]["general"]["loss"] / b["general"]["loss"] - 1),
           "shipped": guard["shipped"], "cache_weight": weight, "base_cache_weight": base_weight}
    for key, sim in sims.items():
        row[f"top3_{key}"] = 100 * sim["top3"]
        row[f"ksr_{key}"] = 100 * sim["ksr"]
    row["strip_top3_gain"] = 100 * (row["top3_everything"] / row["top3_base"] - 1)
    row["ksr_gain"] = row["ksr_everything"] - row["ksr_base"]
    print(json.dumps(row), flush=True)
    write_lines(saved, [json.dumps(row)])
    return row


def main(argv=None):
    from data_pipeline.corpora import load_corpus
    from export.exporter import export_run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="user sizes in words")
    parser.add_argument("--categories", nargs="+", choices=sorted(CATEGORIES), default=sorted(CATEGORIES),
                        help="Brown fiction categories used as users (default: all six)")
    args = parser.parse_args(argv)
    general = write_lines(OUT / "general.txt", load_corpus("nlp-corpus").splits["test"][:GENERAL_SENTENCES])
    base_bundle = OUT / "base-bundle"
    if not (base_bundle / "manifest.json").exists():
        export_run(BASE, "dynamic_int8", base_bundle)
    rows = [measure(name, first, second, general, base_bundle)
            for name, (first, second) in users(args.sizes).items() if name.split("-")[0] in args.categories]
    for size in args.sizes:
        group = [r for r in rows if r["user"].endswith(f"-{size // 1000}k")]
        mean = {"user": f"mean, {size // 1000}k words"}
        for key, value in group[0].items():
            if isinstance(value, (int, float)) and key != "user":
                mean[key] = statistics.fmean(r[key] for r in group)
        mean["shipped"] = f"{sum(r['shipped'] != 'fine-tuned' for r in group)} of {len(group)} backed off"
        rows.append(mean)
    print(write_results("personalization_small", rows, [
        ("user", "user (category-size)"), ("words", "words"),
        ("model_top3_base", "model top-3 % base"), ("model_top3_free", "fine-tuned, no guard"),
        ("model_top3_guarded", "guarded"),
        ("general_loss_free", "general loss % no guard"), ("general_loss_guarded", "guarded"),
        ("shipped", "guard shipped"),
        ("top3_base", "strip top-3 % base"), ("top3_base+cache", "+cache"), ("top3_guarded", "guarded"),
        ("top3_everything", "guarded+cache+words"), ("strip_top3_gain", "gain % (rel.)"),
        ("ksr_base", "KSR % base"), ("ksr_base+cache", "+cache"), ("ksr_free", "no guard"),
        ("ksr_guarded", "guarded"), ("ksr_everything", "everything"), ("ksr_gain", "KSR gain (points)")]))


if __name__ == "__main__":
    main()
