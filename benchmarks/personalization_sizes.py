"""Should ``kblm personalize``'s settings depend on how much text the user has? A sweep by size.

Users: Brown fiction categories (never trained on by the base) at 2,000, 6,000 and 20,000
words, made as in benchmarks/personalization_small.py (a category's samples' first halves, in
order). Base: the nlp-corpus ``mobile`` run of benchmarks/cells.py. Every setting fine-tunes
every user with the forgetting guard on (2%, as shipped) and is judged on a dev text: up to
1,200 sentences of the category's samples the user drew nothing from (other authors in the
same genre; the on-device benchmark's other cut). Not the same authors' second halves: those
are what benchmarks/personalization_small.py measures the chosen defaults on, and a dev slice
of the user's own text would be 200 words at 2,000 (top-3 within ±7% relative). The general
loss change (nlp-corpus test, first 1,000 sentences) is the guard's.

Run: ``python benchmarks/personalization_sizes.py [--part 0/2] [--sizes ...] [--settings ...]``
(``--part i/n``: this process takes every n-th of the chosen runs; run the parts side by side,
one thread each; about 35 minutes on 2 cores. Resumable: finished runs are read, not redone).
Every finished run goes into benchmarks/results/personalization_sizes.{json,md};
``--summary-only`` just writes them.
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
from benchmarks.personalization import write_lines  # noqa: E402
from benchmarks.personalization_small import BASE  # noqa: E402

OUT = Path("runs/bench/personal-sizes")
SIZES = (2000, 6000, 20000)
CATEGORIES = ("k", "l", "n", "p")  # the fiction categories with 20,000 words of first halves
GENERAL_SENTENCES = 1000
DEFAULTS_NAME = "the defaults"
SETTINGS = {  # name: PersonalizeOptions overrides
    DEFAULTS_NAME: dict(),
    "lr 1e-3": dict(learning_rate=1e-3),
    "anchor 1e-4": dict(anchor=1e-4),
    "anchor 1e-2": dict(anchor=1e-2),
}


def slug(name):
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in name)


def user_name(category, size):
    return f"{category}-{size // 1000}k"  # benchmarks/personalization_small.py's users() names


def user_files():
    """{user name: (user text file, dev text file)}."""
    from benchmarks.personalization import spread
    from benchmarks.personalization_ondevice import other_authors
    from benchmarks.personalization_small import MODEL_SENTENCES, users

    made = {name: texts for name, texts in users(SIZES).items() if name.split("-")[0] in CATEGORIES}
    others = other_authors(made)
    return {name: (write_lines(OUT / "users" / f"{name}.txt", first),
                   write_lines(OUT / "dev" / f"{name}.txt", spread(others[name], MODEL_SENTENCES)))
            for name, (first, _) in made.items()}


def run_one(setting, category, size, files, general, threads, may_run=True):
    """The run's row (None when it is not finished and ``may_run`` is false)."""
    from keyboard_lm.personalize import PersonalizeOptions, finished, personalize

    name = user_name(category, size)
    run = OUT / slug(setting) / name
    options = PersonalizeOptions(**SETTINGS[setting], general_limit=GENERAL_SENTENCES, ksr_limit=0,
                                 quantize=None, threads=threads)
    user, dev = files[name]
    if finished(run, BASE, options):
        report = json.loads((run / "report.json").read_text())
    elif not may_run:
        return None
    else:
        report = personalize(BASE, str(user), run, options, eval_texts=str(dev), general=str(general),
                             progress=False)
    before, after = report["before"], report["after"]
    row = {"setting": setting, "user": name, "size": size, "words": report["words"],
           "dev_gain": 100 * (after["eval"]["top3"] / before["eval"]["top3"] - 1),
           "general_loss": 100 * (after["general"]["loss"] / before["general"]["loss"] - 1),
           "shipped": report["forgetting_guard"]["shipped"], "best_epoch": report["best_epoch"],
           "seconds": report["finetune_seconds"]}
    print(json.dumps(row), flush=True)
    return row


def jobs(sizes=SIZES, settings=tuple(SETTINGS)):
    return [(setting, category, size) for size in sizes for category in CATEGORIES for setting in settings]


def summarize(rows):
    table = []
    for size in SIZES:
        by_setting = {s: {r["user"]: r for r in rows if r["size"] == size and r["setting"] == s} for s in SETTINGS}
        reference = by_setting[DEFAULTS_NAME]
        for setting, runs in by_setting.items():
            if len(runs) < len(CATEGORIES):
                continue
            better = sum(runs[u]["dev_gain"] > reference[u]["dev_gain"] for u in runs if u in reference)
            worse = sum(runs[u]["dev_gain"] < reference[u]["dev_gain"] for u in runs if u in reference)
            table.append({
                "size": f"{size:,}", "setting": setting,
                "words": statistics.fmean(r["words"] for r in runs.values()),
                "dev_gain": statistics.fmean(r["dev_gain"] for r in runs.values()),
                "versus": "(reference)" if setting == DEFAULTS_NAME or len(reference) < len(CATEGORIES)
                else f"{better} / {worse}",
                "general_loss": statistics.fmean(r["general_loss"] for r in runs.values()),
                "backed_off": f"{sum(r['shipped'] != 'fine-tuned' for r in runs.values())} of {len(runs)}",
                "epochs": statistics.fmean(r["best_epoch"] or 0 for r in runs.values()),
                "seconds": statistics.fmean(r["seconds"] for r in runs.values()),
                "per_user": {u: round(r["dev_gain"], 2) for u, r in sorted(runs.items())}})
    if not table:
        return "no size has all its runs yet"
    from keyboard_lm.personalize import PersonalizeOptions

    d = PersonalizeOptions()
    return write_results("personalization_sizes", table, [
        ("size", "user words"), ("setting", f"setting (defaults: Adam at {d.learning_rate:g}, anchor {d.anchor:g}, "
                                            f"guard {d.max_forgetting:.0%})"),
        ("dev_gain", "mean top-3 gain % on dev text"), ("versus", "users better / worse than the defaults"),
        ("general_loss", "general loss change %"), ("backed_off", "guard backed off"),
        ("epochs", "mean best epoch"), ("seconds", "fine-tune s")])


def main(argv=None):
    from data_pipeline.corpora import load_corpus

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", default="0/1", help="i/n: run every n-th job starting at i")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), choices=SIZES, help="user sizes to run")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS),
                        help="settings to run (the summary reads every finished run)")
    parser.add_argument("--summary-only", action="store_true")
    args = parser.parse_args(argv)
    index, count = (int(x) for x in args.part.split("/"))
    general = write_lines(OUT / "general.txt", load_corpus("nlp-corpus").splits["test"][:GENERAL_SENTENCES])
    files = user_files()
    chosen = jobs(args.sizes, args.settings)
    mine = set() if args.summary_only else {job for i, job in enumerate(chosen) if i % count == index}
    rows = [run_one(*job, files, general, args.threads, may_run=job in mine) for job in jobs()]
    print(summarize([row for row in rows if row is not None]))


if __name__ == "__main__":
    main()
