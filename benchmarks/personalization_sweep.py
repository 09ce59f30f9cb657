"""Which fine-tuning settings should ``kblm personalize`` default to? A sweep, chosen on held-out text.

Same users as benchmarks/personalization.py (Brown's fiction categories, first half of
each). Every setting fine-tunes every user; a setting is judged by the mean relative
top-3 gain on each user's *held-out slice* (the last 10% of the first half, which early
stopping also watches), never on the second half the headline figures are measured on.
The second-half gain is listed too, to show how well the held-out choice transfers, and
the loss change on general text (nlp-corpus test, first 500 sentences) for forgetting.

Run: ``python benchmarks/personalization_sweep.py [--settings a,b] [--threads 1]`` after
benchmarks/personalization.py has written the users' texts (two processes with disjoint
``--settings`` use two cores). Resumable. Writes benchmarks/results/personalization_sweep.{json,md}
from every finished setting.
"""
import argparse
import csv
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.common import write_results  # noqa: E402
from benchmarks.personalization import BASE, CATEGORIES, OUT  # noqa: E402

SWEEP = OUT / "sweep"
GENERAL_SENTENCES = 500
SETTINGS = {  # name: PersonalizeOptions overrides
    "v1 (lr 3e-4, patience 1)": dict(learning_rate=3e-4, patience=1, epochs=10),
    "lr 3e-4, patience 2": dict(learning_rate=3e-4, patience=2, epochs=20),
    "lr 1e-3, patience 2": dict(learning_rate=1e-3, patience=2, epochs=20),
}


def slug(name):
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in name)


def held_out_top3(run):
    """Held-out top-3 at the kept epoch (the base's if no epoch beat it)."""
    best = json.loads((run / "best.json").read_text())
    if best.get("epoch", 0) == 0 and not (run / "logs" / "train.csv").exists():
        return None
    with open(run / "logs" / "train.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        if int(row["epoch"]) + 1 == best["epoch"]:
            return float(row["val_top3"])
    return None


def run_setting(name, threads):
    from keyboard_lm.personalize import PersonalizeOptions, personalize

    general = OUT / "general.txt"
    rows = []
    for category in CATEGORIES:
        run = SWEEP / slug(name) / category
        if (run / "report.json").exists():
            report = json.loads((run / "report.json").read_text())
        else:
            options = PersonalizeOptions(**SETTINGS[name], general_limit=GENERAL_SENTENCES, ksr_limit=0,
                                         quantize=None, threads=threads)
            report = personalize(BASE, OUT / "users" / f"{category}.txt", run, options,
                                 eval_texts=OUT / "eval" / f"{category}.txt", general=str(general), progress=False)
        rows.append({"category": category, "best_epoch": report["best_epoch"],
                     "held_top3": held_out_top3(run), "eval_top3_base": report["before"]["eval"]["top3"],
                     "eval_top3": report["after"]["eval"]["top3"],
                     "general_loss": 100 * (report["after"]["general"]["loss"] / report["before"]["general"]["loss"] - 1),
                     "seconds": report["finetune_seconds"]})
        print(name, json.dumps(rows[-1]), flush=True)
    return rows


def base_held_out_top3():
    """The base's top-3 on each user's held-out slice (the v1 runs' logs start from it)."""
    import tensorflow as tf

    from data_pipeline.corpora import read_messages
    from data_pipeline.dataset import PipelineConfig, make_dataset
    from keyboard_lm.loop import Steps, evaluate
    from keyboard_lm.metrics import summarize
    from keyboard_lm.personalize import split_user_text
    from keyboard_lm.run import load_run_config, load_run_model, load_run_vocabulary

    cached = SWEEP / "base_held_out.json"
    if cached.exists():
        return json.loads(cached.read_text())
    model_config, train_config, _ = load_run_config(BASE)
    vocab = load_run_vocabulary(BASE, model_config)
    steps = Steps(load_run_model(BASE), model_config, tf.distribute.get_strategy(), clip_norm=1.0)
    pipeline = PipelineConfig(mode="message", batch_size=16, sequence_length=train_config.pipeline.sequence_length)
    out = {}
    for category in CATEGORIES:
        _, held = split_user_text(read_messages(OUT / "users" / f"{category}.txt"), 0.1)
        out[category] = summarize(evaluate(steps, make_dataset(held, vocab, pipeline, False)))["top3"]
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(out, indent=2) + "\n")
    return out


def summarize_settings():
    base_held = base_held_out_top3()
    table = []
    for name in SETTINGS:
        reports = [SWEEP / slug(name) / c / "report.json" for c in CATEGORIES]
        if not all(r.exists() for r in reports):
            continue
        rows = run_setting(name, None)  # all done: reads the reports
        held = [100 * (r["held_top3"] / base_held[r["category"]] - 1) if r["held_top3"] else 0.0 for r in rows]
        table.append({"setting": name,
                      "held_gain": statistics.fmean(held),
                      "eval_gain": statistics.fmean(100 * (r["eval_top3"] / r["eval_top3_base"] - 1) for r in rows),
                      "general_loss": statistics.fmean(r["general_loss"] for r in rows),
                      "epochs": statistics.fmean(r["best_epoch"] or 0 for r in rows),
                      "seconds": statistics.fmean(r["seconds"] for r in rows),
                      "per_user_eval_gain": {r["category"]: round(100 * (r["eval_top3"] / r["eval_top3_base"] - 1), 2)
                                             for r in rows}})
    if table:
        print(write_results("personalization_sweep", table, [
            ("setting", "setting"), ("held_gain", "top-3 gain % on held-out (chooses)"),
            ("eval_gain", "top-3 gain % on second half"), ("general_loss", "general loss change %"),
            ("epochs", "mean best epoch"), ("seconds", "mean fine-tune s")]))


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
