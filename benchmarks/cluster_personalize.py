"""Many users through a local Ray against the process pool: ``kblm personalize --users DIR``
with ``--cluster ray`` and with ``--jobs 2``, the whole command timed, alternating in one run.

Users: twelve real writers' texts, two per Brown fiction category (k, l, m, n, p, r), each
two consecutive blocks of about 3,000 words (whole sentences). Base: a ``tiny`` run trained
on Brown for two minutes (made once under runs/bench/cluster/). Each command gets a fresh
output folder (removed after it is timed) and the same options; rounds alternate which engine
goes first. Also 4 users (one round), for how the time per user grows. Each user runs two
epochs at most, a 500-sentence forgetting check and a 50-message KSR replay: the batch's
engine, not the fine-tune, is what is compared.

Writes benchmarks/results/cluster_personalize.json and .md: per run the wall-clock seconds
and seconds per user; the ratio Ray / pool of the medians at 12 users.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import write_results  # noqa: E402
from benchmarks.personalization import CATEGORIES  # noqa: E402

WORK = ROOT / "runs" / "bench" / "cluster"
WORDS = 3000
KBLM = [sys.executable, "-m", "keyboard_lm.cli"]
OPTIONS = ["--epochs", "2", "--ksr-limit", "50", "--general-limit", "500"]  # the batch, not the fine-tune, is measured
ENGINES = {"--jobs 2": ["--jobs", "2"], "--cluster ray": ["--cluster", "ray"]}


def make_base():
    base = WORK / "base"
    if not (base / "best.keras").exists():
        subprocess.run(KBLM + ["train", "--corpus", "brown", "--preset", "tiny", "--epochs", "1", "--max-minutes",
                               "2", "--out", str(base)], check=True, cwd=ROOT)
    return base


def make_users():
    """Twelve user files (two per category), each about WORDS words of consecutive sentences."""
    from data_pipeline.corpora import brown_documents, fetch

    folder = WORK / "users-12"
    if folder.exists():
        return folder
    sentences = {c: [] for c in CATEGORIES}
    for _, category, text, _ in brown_documents(fetch("brown")):
        if category in sentences:
            sentences[category].extend(text)
    tmp = WORK / "users-12.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for category, lines in sentences.items():
        start = 0
        for part in (1, 2):
            words, end = 0, start
            while words < WORDS:
                words += len(lines[end].split())
                end += 1
            (tmp / f"{category}{part}.txt").write_text("\n".join(lines[start:end]) + "\n")
            start = end
    tmp.rename(folder)
    return folder


def subset(users, count):
    folder = WORK / f"users-{count}"
    if not folder.exists():
        folder.mkdir()
        for path in sorted(users.iterdir())[:count]:
            shutil.copy(path, folder / path.name)
    return folder


def timed(base, users, engine, tag):
    out = WORK / f"out-{tag}"
    shutil.rmtree(out, ignore_errors=True)  # this script's own earlier output
    env = {**os.environ, "KBLM_PROGRESS_INTERVAL": "60"}
    started = time.perf_counter()
    result = subprocess.run(KBLM + ["personalize", "--base", str(base), "--users", str(users), "--out", str(out),
                                    *OPTIONS, *ENGINES[engine]], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else []
    if result.returncode != 0 or any(row["status"] != "personalized" for row in summary):
        raise SystemExit(f"{engine} failed:\n{result.stderr[-2000:]}\n{json.dumps(summary, indent=1)[:3000]}")
    shutil.rmtree(out, ignore_errors=True)
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="alternations at 12 users")
    parser.add_argument("--no-small", action="store_true", help="skip the one round at 4 users")
    args = parser.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    base, users = make_base(), make_users()
    plan = ([] if args.no_small else [(4, 0)]) + [(12, r) for r in range(args.rounds)]
    rows = []
    for count, round_ in plan:
        folder = users if count == 12 else subset(users, count)
        order = list(ENGINES) if round_ % 2 == 0 else list(reversed(ENGINES))
        for engine in order:
            seconds = timed(base, folder, engine, f"{count}-{round_}-{engine.split()[-1]}")
            rows.append({"users": count, "round": round_ + 1, "engine": engine, "seconds": round(seconds, 1),
                         "seconds_per_user": round(seconds / count, 1)})
            print(f"{count} users, round {round_ + 1}, {engine}: {seconds:.1f} s", flush=True)
    report(rows)


def report(rows):
    """Writes the results (the ratio: of the medians at 12 users) and prints the table."""
    medians = {e: statistics.median(r["seconds"] for r in rows if r["engine"] == e and r["users"] == 12)
               for e in ENGINES}
    ratio = medians["--cluster ray"] / medians["--jobs 2"]
    rounds = sum(r["users"] == 12 and r["engine"] == "--jobs 2" for r in rows)
    table = write_results("cluster_personalize", rows, [
        ("users", "users"), ("engine", "engine"), ("round", "round"), ("seconds", "seconds (whole command)"),
        ("seconds_per_user", "seconds per user")],
        {"ratio_ray_to_pool_12_users": round(ratio, 3), "medians_12_users": medians, "rounds_12_users": rounds,
         "words_per_user": WORDS, "options": OPTIONS})
    print(table)
    print(f"12 users: Ray / --jobs 2 = {ratio:.2f} (medians of {rounds})")


if __name__ == "__main__":
    main()
