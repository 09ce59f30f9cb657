"""Which fine-tuning settings should ``kblm personalize`` default to? A sweep on a dev slice.

Same users as benchmarks/personalization.py (Brown's fiction categories, category split;
the base is its Brown run).
The last 10% of each user's first half is set aside as a dev slice; every setting
fine-tunes every user on the rest (which holds out its own last 10% for early stopping)
and is judged by the mean relative top-3 gain on the dev slices: text neither the
fine-tune nor its early stopping saw, and not the second halves the headline figures are
measured on. The loss change on general text (nlp-corpus test, first 500 sentences)
shows forgetting. The "no final pass" settings run without the final pass and are
compared with the earlier defaults (no final pass either).

Run: ``python benchmarks/personalization_sweep.py [--settings 0,2] [--threads 1]`` after
benchmarks/quality.py (processes with disjoint ``--settings`` use more cores). Resumable. Writes benchmarks/results/personalization_sweep.{json,md}
from every finished setting.
"""
import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.common import write_results  # noqa: E402
from benchmarks.personalization import (CATEGORIES, OUT, category_halves, general_text,  # noqa: E402
                                        personalize_once, write_lines)

SWEEP = OUT / "sweep-dev"
SWEEP_GENERAL_SENTENCES = 500
DEFAULTS_NAME, EARLIER_NAME = "the defaults", "no final pass (the earlier defaults)"
EARLIER = dict(final_pass=False)  # the defaults before the final pass was added
SETTINGS = {  # name: PersonalizeOptions overrides, each compared with the defaults it changes
    DEFAULTS_NAME: dict(),
    "final pass + anchor 1e-4": dict(anchor=1e-4),
    "final pass + dropout 0.3": dict(dropout=0.3),
    EARLIER_NAME: EARLIER,
    # measured against the earlier defaults, before the final pass:
    "no final pass, up to 10 epochs, patience 1": dict(EARLIER, patience=1, epochs=10),
    "no final pass, lr 1e-3": dict(EARLIER, learning_rate=1e-3),
    "no final pass, anchor 1e-4": dict(EARLIER, anchor=1e-4),
    "no final pass, anchor 0 (no pull)": dict(EARLIER, anchor=0.0),
    "no final pass, dropout 0.3 (base: 0.1)": dict(EARLIER, dropout=0.3),
    "no final pass, freeze embedding + output": dict(EARLIER, freeze="embedding"),
    "no final pass, batch 8": dict(EARLIER, batch_size=8),
}


def slug(name):
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in name)


def dev_split(first_half, category):
    """(user text, dev text) files: the first half without its last 10%, and that 10%."""
    from keyboard_lm.personalize import PersonalizeOptions, split_user_text

    rest, dev = split_user_text(first_half, PersonalizeOptions().holdout)
    return (write_lines(SWEEP / "users" / f"{category}.txt", rest),
            write_lines(SWEEP / "dev" / f"{category}.txt", dev))


def run_setting(name, threads):
    from keyboard_lm.personalize import PersonalizeOptions

    halves, general = category_halves("category"), general_text()
    rows = []
    for category in CATEGORIES:
        user, dev = dev_split(halves[category][0], category)
        options = PersonalizeOptions(**SETTINGS[name], general_limit=SWEEP_GENERAL_SENTENCES, ksr_limit=0,
                                     quantize=None, threads=threads)
        report = personalize_once(SWEEP / slug(name) / category, user, options, eval_texts=dev,
                                  general=str(general))
        before, after = report["before"], report["after"]
        rows.append({"category": category, "best_epoch": report["best_epoch"],
                     "dev_gain": 100 * (after["eval"]["top3"] / before["eval"]["top3"] - 1),
                     "general_loss": 100 * (after["general"]["loss"] / before["general"]["loss"] - 1),
                     "seconds": report["finetune_seconds"]})
        print(name, json.dumps(rows[-1]), flush=True)
    return rows


def summarize_settings():
    table = []
    for name in SETTINGS:
        if not all((SWEEP / slug(name) / c / "report.json").exists() for c in CATEGORIES):
            continue
        rows = run_setting(name, None)  # all done: reads the reports
        table.append({"setting": name,
                      "dev_gain": statistics.fmean(r["dev_gain"] for r in rows),
                      "users_better": None,
                      "general_loss": statistics.fmean(r["general_loss"] for r in rows),
                      "epochs": statistics.fmean(r["best_epoch"] or 0 for r in rows),
                      "seconds": statistics.fmean(r["seconds"] for r in rows),
                      "per_user_dev_gain": {r["category"]: round(r["dev_gain"], 2) for r in rows}})
    if not table:
        return
    by_name = {row["setting"]: row for row in table}
    for row in table:  # each setting against the defaults it changes (the earlier ones for "no final pass")
        reference = EARLIER_NAME if SETTINGS[row["setting"]].get("final_pass") is False else DEFAULTS_NAME
        if reference not in by_name:
            row["users_better"] = row["compared_with"] = ""
            continue
        gains, base = row["per_user_dev_gain"], by_name[reference]["per_user_dev_gain"]
        row["compared_with"] = "" if row["setting"] == reference else reference
        row["users_better"] = ("(reference)" if row["setting"] == reference else
                               f"{sum(gains[c] > base[c] for c in CATEGORIES)} / "
                               f"{sum(gains[c] < base[c] for c in CATEGORIES)}")
    from keyboard_lm.personalize import PersonalizeOptions

    d = PersonalizeOptions()
    print(write_results("personalization_sweep", table, [
        ("setting", f"setting (defaults: Adam at {d.learning_rate:g}, anchor {d.anchor:g}, up to {d.epochs} "
                    f"epochs, patience {d.patience}{', final pass' if d.final_pass else ''})"),
        ("dev_gain", "mean top-3 gain % on dev slices"),
        ("users_better", "users better / worse"), ("compared_with", "than"),
        ("general_loss", "general loss change %"), ("epochs", "mean best epoch")]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", help="comma-separated indices into SETTINGS (default: all)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--summary-only", action="store_true")
    args = parser.parse_args()
    names = list(SETTINGS)
    if args.settings:
        names = [names[int(i)] for i in args.settings.split(",")]
    if not args.summary_only:
        for name in names:
            run_setting(name, args.threads)
    summarize_settings()


if __name__ == "__main__":
    main()
