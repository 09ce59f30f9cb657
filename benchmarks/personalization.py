"""Personalization on real text: Brown's fiction categories as users with distinct styles.

The Bengio split trains the base on categories a-j (non-fiction); the fiction categories
k, l, m, n, p, r are never trained on, so one base run serves them all. Each category is
a "user": ``kblm personalize`` fine-tunes on the first half of its text (its own last 10%
held out for early stopping) and everything is measured on the second half. "First half"
is cut two ways (``--split``):

- ``category``: the category's samples split in two at the sample boundary nearest half
  its tokens. Brown's samples are ~2,000 words, each by another author, so the second half
  is other authors writing in the same genre.
- ``document``: every sample cut in two; the user's text is the first halves and the
  measure is on the second halves, i.e. the same authors' unseen text, as for a person.

Measured: model top-3 and perplexity; through the harness (dynamic_int8 bundles) KSR and
top-3; the personal cache alone and with fine-tuning (its weight chosen for each bundle on
the held-out slice of the first half); and forgetting, on general text neither the base
nor the user saw: the first 2,000 sentences of nlp-corpus's test split (SMS, dialogue,
forums, lyrics, news). (The other fiction categories would flatter the fine-tune: their
loss falls about 8% too.) Control: the same fine-tune on the same amount of non-fiction
(Brown train, which the base already saw), evaluated on every category. The base was
trained on running text (stream mode) and the keyboard starts each field afresh, so part
of any fine-tune's gain is that adaptation; the control measures it, and personalization
is what exceeds it. (Categories k, l, m lie in the base's validation split, which chose
its epoch, so their base is if anything a little stronger.) Cost: personalizing ``mobile`` on 5,000 words with one thread, and
its peak memory (medians of three runs, each in its own process).

Run: ``python benchmarks/personalization.py`` after benchmarks/quality.py (its Brown run is
the base; ``--base brown-bengio-wide``: its wider run). Resumable. Writes
benchmarks/results/personalization.{json,md} (category split), personalization_same_author.{json,md}
(document split) and personalization_cost.{json,md}; with the wide base, the same names + ``_wide``.
"""
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.common import write_results  # noqa: E402

BASE = Path("runs/bench/brown-bengio-mobile")
OUT = Path("runs/bench/personal")
# --base: the bench runs (benchmarks/quality.py) personalized, with their output dir and result suffix
BASES = {"brown-bengio-mobile": (OUT, ""), "brown-bengio-wide": (Path("runs/bench/personal-wide"), "_wide")}
SUFFIX = ""
CATEGORIES = {"k": "general fiction", "l": "mystery", "m": "science fiction", "n": "adventure",
              "p": "romance", "r": "humor"}
EVAL_SENTENCES = 300  # of each second half, replayed through the harness
GENERAL_SENTENCES = 2000  # of nlp-corpus test (forgetting check)
CACHE_WEIGHTS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
COST_WORDS = 5000
COST_REPEATS = 3  # the cost run's figures are medians (peak memory: the largest)


def write_lines(path, lines):
    """Writes the lines unless the file already holds them (its time then marks the last change)."""
    text = "\n".join(lines) + "\n"
    if not (path.exists() and path.read_text(encoding="utf-8") == text):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path


def _halves(sentences, counts):
    """(first, second): the sentences cut at the first sentence end at or after half the tokens."""
    seen, half = 0, sum(counts) / 2
    for cut, count in enumerate(counts):
        seen += count
        if seen >= half:
            break
    return sentences[:cut + 1], sentences[cut + 1:]


def category_halves(split="category"):
    """{category: (first half, second half)} of its sentences.

    ``category``: the category's samples split at the sample boundary nearest half its
    tokens (Brown's samples are ~2,000 words by one author each, so the second half is other
    authors'). ``document``: every sample cut in two, the first halves train and the
    second halves evaluate (the same authors).
    """
    from data_pipeline.corpora import brown_documents, fetch

    documents = {c: [] for c in CATEGORIES}
    for _, category, sentences, counts in brown_documents(fetch("brown")):
        if category in documents:
            documents[category].append((sentences, counts))
    halves = {}
    for category, docs in documents.items():
        if split == "category":
            before = list(itertools.accumulate(sum(counts) for _, counts in docs))
            cut = min(range(1, len(docs)), key=lambda i: abs(before[i - 1] - before[-1] / 2))
            halves[category] = ([s for d, _ in docs[:cut] for s in d], [s for d, _ in docs[cut:] for s in d])
        else:
            parts = [_halves(*doc) for doc in docs]
            halves[category] = ([s for first, _ in parts for s in first], [s for _, second in parts for s in second])
    return halves


def simulate_bundle(bundle_dir, messages, weight=None, prime=None):
    from keyboard_lm.phone.engine import open_engine
    from keyboard_lm.harness.simulator import EnginePredictor, simulate

    engine = open_engine(bundle_dir, cache_weight=weight, prime=prime)  # prime: the user's earlier text
    return simulate(EnginePredictor(engine), messages, progress=False)


def choose_cache_weight(bundle, first_half):
    """The cache weight with the best KSR on the held-out tail of the first half, for this bundle.

    A personalized bundle has trained on that tail in its final pass, so the cache helps it
    less there than on new text: its weight comes out, if anything, too small."""
    from keyboard_lm.personalize import PersonalizeOptions, split_user_text

    train, held = split_user_text(first_half, PersonalizeOptions().holdout)
    ksr = {w: simulate_bundle(bundle, held[:150], w, train)["ksr"] for w in CACHE_WEIGHTS}
    return max(ksr, key=ksr.get), ksr


def spread(sentences, n):
    """``n`` sentences spread evenly over the list (every author's part is represented)."""
    if len(sentences) <= n:
        return sentences
    return [sentences[i * len(sentences) // n] for i in range(n)]


def split_root(split):
    return OUT if split == "category" else OUT / "same-author"


def general_text():
    """The forgetting check's text: nlp-corpus test, which neither the base nor the users saw."""
    from data_pipeline.corpora import load_corpus

    return write_lines(OUT / "general.txt", load_corpus("nlp-corpus").splits["test"][:GENERAL_SENTENCES])


def personalize_once(run, texts, options, **kwargs):
    """The report of ``run``: reused if it holds this base and user with these options, else made."""
    from keyboard_lm.personalize import finished, personalize

    inputs = [Path(texts)] + ([Path(kwargs["eval_texts"])] if kwargs.get("eval_texts") else [])
    if finished(run, BASE, options) and all(p.stat().st_mtime < (run / "report.json").stat().st_mtime
                                             for p in inputs):
        return json.loads((run / "report.json").read_text())
    return personalize(BASE, texts, run, options, progress=False, **kwargs)


def top3_on(run, messages):
    """Model top-3 of a run on messages (each from <bos>, as the keyboard starts a field)."""
    from keyboard_lm.training.evaluate import evaluate_messages

    return {name: summary["top3"] for name, summary in evaluate_messages(run, messages).items()}


def run_category(category, first, second, general_file, base_bundle, split, threads=None):
    from keyboard_lm.personalize import PersonalizeOptions

    root = split_root(split)
    user = write_lines(root / "users" / f"{category}.txt", first)
    evaluation = write_lines(root / "eval" / f"{category}.txt", spread(second, EVAL_SENTENCES * 4))
    run = root / category
    report = personalize_once(run, user, PersonalizeOptions(ksr_limit=0, threads=threads), eval_texts=evaluation,
                              general=str(general_file))
    weight, tried = choose_cache_weight(base_bundle, first)
    personal_weight, personal_tried = choose_cache_weight(run / "bundle", first)  # it predicts better: less cache
    messages = spread(second, EVAL_SENTENCES)
    sims = {"base": simulate_bundle(base_bundle, messages),
            "base+cache": simulate_bundle(base_bundle, messages, weight, first),
            "personalized": simulate_bundle(run / "bundle", messages),
            "personalized+cache": simulate_bundle(run / "bundle", messages, personal_weight, first)}
    b, a = report["before"], report["after"]
    row = {"category": f"{category} ({CATEGORIES[category]})", "train_words": report["words"],
           "model_top3_base": 100 * b["eval"]["top3"], "model_top3_personal": 100 * a["eval"]["top3"],
           "ppl_base": b["eval"]["perplexity"], "ppl_personal": a["eval"]["perplexity"],
           "general_ppl_base": b["general"]["perplexity"], "general_ppl_personal": a["general"]["perplexity"],
           "cache_weight": weight, "cache_weight_ksr": tried, "personal_cache_weight": personal_weight,
           "personal_cache_weight_ksr": personal_tried, "best_epoch": report["best_epoch"],
           "bundle": report.get("bundle_quantization", "dynamic_int8"),
           "finetune_seconds": report["finetune_seconds"]}
    for name, sim in sims.items():
        row[f"ksr_{name}"] = 100 * sim["ksr"]
        row[f"top3_{name}"] = 100 * sim["top3"]
    row["model_top3_gain"] = 100 * (a["eval"]["top3"] / b["eval"]["top3"] - 1)
    row["general_loss"] = 100 * (a["general"]["loss"] / b["general"]["loss"] - 1)
    print(json.dumps(row), flush=True)
    return row


def control(halves, split, threads=None):
    """Fine-tune on non-fiction the base already saw; model top-3 on each category's eval text."""
    from data_pipeline.corpora import load_corpus
    from keyboard_lm.personalize import PersonalizeOptions

    sentences = int(statistics.fmean(len(first) for first, _ in halves.values()))  # as many as a user has
    root = split_root(split)
    texts = write_lines(root / "control" / "nonfiction.txt", load_corpus("brown").splits["train"][-sentences:])
    run = root / "control-run"
    personalize_once(run, texts, PersonalizeOptions(ksr_limit=0, quantize=None, threads=threads))
    messages = {c: (root / "eval" / f"{c}.txt").read_text(encoding="utf-8").splitlines() for c in CATEGORIES}
    return {category: 100 * top3 for category, top3 in top3_on(run, messages).items()}


def cost(first_half_k):
    """Personalizing mobile on 5,000 words with one TensorFlow thread, in its own process."""
    from data_pipeline.tokenization import TokenizerOptions, is_word, tokenize

    options = TokenizerOptions(lowercase=False)  # the Bengio vocabulary keeps case
    words, lines = 0, []
    for sentence in first_half_k:
        lines.append(sentence)
        words += sum(is_word(t) for t in tokenize(sentence, options))
        if words >= COST_WORDS:
            break
    texts = write_lines(OUT / "cost" / "user.txt", lines)
    run = OUT / "cost" / "run"
    reports = []
    for _ in range(COST_REPEATS):
        shutil.rmtree(run, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "keyboard_lm.cli", "personalize", "--base", str(BASE), "--texts",
                        str(texts), "--out", str(run), "--threads", "1", "--quantize", "none", "--ksr-limit",
                        "0"], check=True)
        reports.append(json.loads((run / "report.json").read_text()))
    return {"words": reports[0]["words"], "runs": COST_REPEATS,
            "fine_tune_seconds": statistics.median(r["finetune_seconds"] for r in reports),
            "total_seconds": statistics.median(r["seconds_total"] for r in reports),
            "total_seconds_all": [r["seconds_total"] for r in reports],
            "epochs_trained": reports[0]["best_epoch"],
            "peak_rss_mb": max(r["peak_rss_mb"] for r in reports), "threads": 1}


def run_split(split, general, base_bundle, threads=None):
    halves = category_halves(split)
    rows = []
    for category, (first, second) in halves.items():
        rows.append(run_category(category, first, second, general, base_bundle, split, threads))
    control_top3 = control(halves, split, threads)
    for row, category in zip(rows, CATEGORIES):
        row["model_top3_control"] = control_top3[category]
    mean = {"category": "mean"}
    for key in rows[0]:
        if not key.endswith(("category", "_ksr")) and isinstance(rows[0][key], (int, float)):
            mean[key] = statistics.fmean(r[key] for r in rows)
    rows.append(mean)
    for row in rows:
        row["top3_gain_personal"] = 100 * (row["top3_personalized"] / row["top3_base"] - 1)
        row["top3_gain_both"] = 100 * (row["top3_personalized+cache"] / row["top3_base"] - 1)
    name = ("personalization" if split == "category" else "personalization_same_author") + SUFFIX
    print(write_results(name, rows, [
        ("category", "user (Brown category)"), ("train_words", "words"),
        ("model_top3_base", "model top-3 % base"), ("model_top3_personal", "personalized"),
        ("model_top3_gain", "gain % (rel.)"), ("model_top3_control", "control (non-fiction fine-tune)"),
        ("top3_base", "strip top-3 % base"),
        ("top3_base+cache", "+cache"), ("top3_personalized", "personalized"),
        ("top3_personalized+cache", "both"), ("top3_gain_both", "gain % (rel.), both"),
        ("ksr_base", "KSR % base"), ("ksr_base+cache", "+cache"),
        ("ksr_personalized", "personalized"), ("ksr_personalized+cache", "both"),
        ("general_loss", "general loss change %"), ("finetune_seconds", "fine-tune s")]))


def main():
    import argparse

    from export.exporter import export_run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("category", "document", "both", "none"), default="both",
                        help="cut each category's text in two, or each author's sample (default: both; "
                             "none: only the cost run)")
    parser.add_argument("--base", choices=sorted(BASES), default="brown-bengio-mobile",
                        help="the base run (results of another than mobile get a suffix, e.g. _wide)")
    parser.add_argument("--no-cost", action="store_true", help="skip the one-thread cost run")
    parser.add_argument("--threads", type=int, help="TensorFlow threads of the fine-tunes (default: all cores; "
                                                     "1 when running both splits at once on two cores)")
    args = parser.parse_args()
    global BASE, OUT, SUFFIX
    BASE, (OUT, SUFFIX) = Path("runs/bench") / args.base, BASES[args.base]
    splits = {"both": ("category", "document"), "none": ()}.get(args.split, (args.split,))
    if args.threads:  # before anything starts TensorFlow (its thread pools are fixed then)
        from keyboard_lm.personalize import set_threads

        set_threads(args.threads)
    if splits:
        base_bundle = OUT / "base-bundle"
        if not (base_bundle / "manifest.json").exists():
            export_run(BASE, "dynamic_int8", base_bundle)
        general = general_text()
    for split in splits:
        run_split(split, general, base_bundle, args.threads)
    if not args.no_cost:
        cost_row = cost(category_halves()["k"][0])
        print(write_results("personalization_cost" + SUFFIX, [cost_row], [
            ("words", "user words"), ("runs", "runs"), ("fine_tune_seconds", "fine-tune s (median)"),
            ("total_seconds", "total s (load, eval, save; median)"), ("epochs_trained", "best epoch"),
            ("peak_rss_mb", "peak memory MB"), ("threads", "threads")]))


if __name__ == "__main__":
    main()
