"""On-device adaptation (``kblm adapt``, LiteRT's ``train`` signature) against the server fine-tune
(``kblm personalize``), on the same small users in the same run.

Users, base and measure: those of benchmarks/personalization_small.py (Brown's six fiction
categories at 3,000 and 8,000 words; the same authors' unseen second halves; the nlp-corpus
``mobile`` base of benchmarks/cells.py, trained here if missing). Per user:

- server: ``kblm personalize`` with its defaults (forgetting guard at 2%), the run reused from
  personalization_small when it is there;
- phone: the base exported as the phone gets it (dynamic_int8, with the train signature), then
  ``kblm adapt`` on the user's text, the command timed on one core (taskset), its peak memory
  from the adapter's own record;
- model top-3 on up to 1,200 eval sentences: the server's in Keras float (before and after),
  the phone's in LiteRT (the int8 base with and without the adapter): each gain is relative to
  its own base, and the share is phone gain / server gain;
- through the harness on 200 eval sentences: strip top-3 and KSR of the base, the adapter, the
  adapter with the personal cache (primed on the user's text), the server's bundle; the cache's
  weight is personalization_small's choice for the base bundle;
- general loss (nlp-corpus test, 500 sentences) of the adapter against the base, in LiteRT;
- the other cut: model top-3 on up to 1,200 sentences of the category's samples the user drew
  nothing from (other authors in the same genre), the server's bundle and the phone's adapter
  both in LiteRT against the int8 base;
- the adapter's init is random: ``kblm adapt`` runs again with seeds 1 and 2 (model top-3 on
  both cuts), and the share of the server's gain is reported for seed 0 (the default) and as
  the mean over the seeds, with each seed's share over the users' means.

Run: ``python benchmarks/personalization_ondevice.py [--sizes 3000] [--categories k l]``
(resumable: a user's row is reused). Writes benchmarks/results/personalization_ondevice.{json,md}.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.common import write_results  # noqa: E402
from benchmarks.personalization import CATEGORIES, simulate_bundle, spread, write_lines  # noqa: E402
from benchmarks import personalization_small as small  # noqa: E402
from keyboard_lm.phone.bundle import ADAPTER_FORMAT  # noqa: E402

# one folder per adapter block format: a bundle, adapters and rows of an older train signature are never reused
OUT = Path("runs/bench/personal-ondevice") / f"adapter-format-{ADAPTER_FORMAT}"
GENERAL_SENTENCES = 500
SEEDS = 3  # adapter inits per user (model top-3); the strip, KSR and cost use seed 0, the default
KBLM = [sys.executable, "-m", "keyboard_lm.cli"]


def make_base():
    if not (small.BASE / "best.keras").exists():
        from benchmarks.cells import train_one

        train_one("nlp-corpus", "mobile", 30)


def other_authors(users):
    """{user: the sentences of the category's samples the user drew nothing from}: other
    authors writing in the same genre (the other cut of benchmarks/personalization.py).
    ``users``: personalization_small's ``users()``."""
    from data_pipeline.corpora import brown_documents, fetch

    documents = {c: [] for c in CATEGORIES}
    for _, category, sentences, counts in brown_documents(fetch("brown")):
        if category in documents:
            documents[category].append((sentences, counts))
    out = {}
    for name, (first, _) in users.items():
        samples, taken = documents[name.split("-")[0]], 0
        while taken < len(samples) and len(first) > 0:  # the user's text: the first samples' first halves
            first = first[len(small._halves(*samples[taken])[0]):]
            taken += 1
        out[name] = [s for sentences, _ in samples[taken:] for s in sentences]
    return out


def litert_top3(bundle, messages, adapter=None):
    """Model top-3 and loss in LiteRT on whole sentences (the export's own measure)."""
    from export.exporter import sentence_ids
    from keyboard_lm.phone.runtime import score_messages
    from keyboard_lm.training.metrics import summarize

    runner = bundle.runner()
    runner.set_adapter(adapter)
    return summarize(score_messages(runner, sentence_ids(messages, bundle.vocab, len(messages))))


def adapt_timed(bundle, bundle_dir, texts, out, seed=0):
    """``kblm adapt`` as the user runs it, pinned to one core; returns (seconds, the adapter's
    arrays or None if it wrote none, its header)."""
    from keyboard_lm.phone.adapter import load_adapter

    started = time.perf_counter()
    result = subprocess.run(["taskset", "-c", "0", *KBLM, "adapt", str(bundle_dir), "--texts", str(texts),
                             "--out", str(out), "--seed", str(seed), "--quiet", "--overwrite"],
                            cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"kblm adapt failed on {texts}:\n{result.stderr[-2000:]}")
    if not out.exists() or "no adapter" in result.stdout:
        return seconds, None, {"training": {}}
    return (seconds, *load_adapter(out, bundle))


def measure(name, first, second, others, general, phone_bundle_dir):
    from keyboard_lm.harness.simulator import EnginePredictor, simulate
    from keyboard_lm.phone.bundle import load_bundle
    from keyboard_lm.phone.engine import open_engine

    saved = OUT / "rows" / f"{name}.json"
    if saved.exists():
        return json.loads(saved.read_text())
    texts = write_lines(small.OUT / "users" / f"{name}.txt", first)
    evaluation = write_lines(small.OUT / "eval" / f"{name}.txt", spread(second, small.MODEL_SENTENCES))
    server_run, server = small.personalized(name, True, texts, evaluation, general)
    adapter_path = OUT / "adapters" / f"{name}.kbad"
    adapter_path.parent.mkdir(parents=True, exist_ok=True)
    bundle = load_bundle(phone_bundle_dir)
    seconds, arrays, header = adapt_timed(bundle, phone_bundle_dir, texts, adapter_path)
    shipped = arrays is not None
    eval_sentences = spread(second, small.MODEL_SENTENCES)
    base_model, phone_model = litert_top3(bundle, eval_sentences), litert_top3(bundle, eval_sentences, arrays)
    other_sentences = spread(others, small.MODEL_SENTENCES)  # other authors: both sides in LiteRT
    other = {"base": litert_top3(bundle, other_sentences), "phone": litert_top3(bundle, other_sentences, arrays),
             "server": litert_top3(load_bundle(server_run / "bundle"), other_sentences)}
    # The adapter's init is random (adapter_down): the same user, other seeds, model top-3 only.
    seed_top3 = {0: (phone_model["top3"], other["phone"]["top3"])}
    for seed in range(1, SEEDS):
        seeded = adapt_timed(bundle, phone_bundle_dir, texts, OUT / "adapters" / f"{name}-seed{seed}.kbad", seed)[1]
        seed_top3[seed] = (litert_top3(bundle, eval_sentences, seeded)["top3"],
                           litert_top3(bundle, other_sentences, seeded)["top3"])
    general_lines = general.read_text().splitlines()[:GENERAL_SENTENCES]
    general_base, general_phone = litert_top3(bundle, general_lines), litert_top3(bundle, general_lines, arrays)
    messages = spread(second, small.EVAL_SENTENCES)
    weight = small.cache_weight(phone_bundle_dir, first)

    def with_adapter(cache):
        engine = open_engine(phone_bundle_dir, cache_weight=weight if cache else None,
                             prime=first if cache else None, adapter=adapter_path if shipped else None)
        return simulate(EnginePredictor(engine), messages, progress=False)

    sims = {"base": simulate_bundle(phone_bundle_dir, messages),
            "base+cache": simulate_bundle(phone_bundle_dir, messages, weight, first),
            "adapter": with_adapter(False), "adapter+cache": with_adapter(True),
            "server": simulate_bundle(server_run / "bundle", messages)}
    before, after = server["before"]["eval"]["top3"], server["after"]["eval"]["top3"]
    training = header["training"]
    row = {"user": name, "words": server["words"], "shipped": "yes" if shipped else "no",
           "model_top3_server_base": 100 * before, "model_top3_server": 100 * after,
           "server_gain": 100 * (after / before - 1),
           "model_top3_phone_base": 100 * base_model["top3"], "model_top3_phone": 100 * phone_model["top3"],
           "phone_gain": 100 * (phone_model["top3"] / base_model["top3"] - 1),
           "other_sentences": len(other_sentences), "other_top3_base": 100 * other["base"]["top3"],
           "other_top3_server": 100 * other["server"]["top3"], "other_top3_phone": 100 * other["phone"]["top3"],
           "other_gain_server": 100 * (other["server"]["top3"] / other["base"]["top3"] - 1),
           "other_gain_phone": 100 * (other["phone"]["top3"] / other["base"]["top3"] - 1),
           "seeds": len(seed_top3),
           "phone_gain_seeds": [100 * (same / base_model["top3"] - 1) for same, _ in seed_top3.values()],
           "other_gain_phone_seeds": [100 * (o / other["base"]["top3"] - 1) for _, o in seed_top3.values()],
           "general_loss_phone": 100 * (general_phone["loss"] / general_base["loss"] - 1),
           "general_loss_server": 100 * (server["after"]["general"]["loss"] / server["before"]["general"]["loss"] - 1),
           "adapt_seconds": seconds, "adapt_seconds_per_5k_words": seconds * 5000 / max(server["words"], 1),
           "peak_memory_mb": training.get("peak_memory_mb"),
           "adapter_bytes": adapter_path.stat().st_size if shipped else 0,
           "bundle_bytes": sum(f["bytes"] for f in bundle.manifest["files"].values()),
           "epochs": len(training.get("epochs", [])), "cache_weight": weight,
           # the phone's forgetting guard (§18.3): the share of the adapter's strength shipped (1: as trained)
           "guard_blend": (training.get("guard") or {}).get("blend", 1.0) if shipped else 0.0}
    row["adapter_share_of_bundle"] = 100 * row["adapter_bytes"] / row["bundle_bytes"]
    row["share_of_server_gain"] = 100 * row["phone_gain"] / row["server_gain"] if row["server_gain"] > 0 else None
    row["phone_gain_mean"] = statistics.fmean(row["phone_gain_seeds"])
    row["other_gain_phone_mean"] = statistics.fmean(row["other_gain_phone_seeds"])
    row["share_of_server_gain_mean"] = (100 * row["phone_gain_mean"] / row["server_gain"]
                                        if row["server_gain"] > 0 else None)
    row["other_share"] = (100 * row["other_gain_phone_mean"] / row["other_gain_server"]
                          if row["other_gain_server"] > 0 else None)
    for key, sim in sims.items():
        row[f"strip_top3_{key}"] = 100 * sim["top3"]
        row[f"ksr_{key}"] = 100 * sim["ksr"]
    for key in ("adapter", "adapter+cache", "server", "base+cache"):
        row[f"strip_gain_{key}"] = 100 * (row[f"strip_top3_{key}"] / row["strip_top3_base"] - 1)
    print(json.dumps(row), flush=True)
    write_lines(saved, [json.dumps(row)])
    return row


def main(argv=None):
    from data_pipeline.corpora import load_corpus
    from export.exporter import export_run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(small.SIZES), help="user sizes in words")
    parser.add_argument("--categories", nargs="+", choices=sorted(CATEGORIES), default=sorted(CATEGORIES))
    args = parser.parse_args(argv)
    make_base()
    general = write_lines(small.OUT / "general.txt", load_corpus("nlp-corpus").splits["test"][:small.GENERAL_SENTENCES])
    phone_bundle = OUT / "base-bundle"
    if not (phone_bundle / "manifest.json").exists():
        export_run(small.BASE, "dynamic_int8", phone_bundle)
    users = small.users(args.sizes)
    others = other_authors(users)
    rows = [measure(name, first, second, others[name], general, phone_bundle)
            for name, (first, second) in users.items() if name.split("-")[0] in args.categories]
    for row in rows:  # the phone's strip gain (adapter + cache) as a share of the server bundle's
        row["strip_share_adapter+cache"] = (100 * row["strip_gain_adapter+cache"] / row["strip_gain_server"]
                                            if row["strip_gain_server"] > 0 else None)
    for size in args.sizes:
        group = [r for r in rows if r["user"].endswith(f"-{size // 1000}k")]
        if not group:
            continue
        mean = {"user": f"mean, {size // 1000}k words", "shipped": f"{sum(r['shipped'] == 'yes' for r in group)} "
                                                                    f"of {len(group)}"}
        for key, value in group[0].items():
            if isinstance(value, (int, float)) and key != "user" and all(r[key] is not None for r in group):
                mean[key] = statistics.fmean(r[key] for r in group)
        mean["share_of_server_gain"] = 100 * mean["phone_gain"] / mean["server_gain"]
        mean["strip_share_adapter+cache"] = 100 * mean["strip_gain_adapter+cache"] / mean["strip_gain_server"]
        mean["share_of_server_gain_mean"] = 100 * mean["phone_gain_mean"] / mean["server_gain"]
        mean["other_share"] = (100 * mean["other_gain_phone_mean"] / mean["other_gain_server"]
                               if mean["other_gain_server"] > 0 else None)
        by_seed = [statistics.fmean(r["phone_gain_seeds"][i] for r in group) for i in range(group[0]["seeds"])]
        mean["share_by_seed"] = [100 * g / mean["server_gain"] for g in by_seed]
        mean["share_range"] = f"{min(mean['share_by_seed']):.0f}–{max(mean['share_by_seed']):.0f}"
        rows.append(mean)
    print(write_results("personalization_ondevice", rows, [
        ("user", "user (category-size)"), ("words", "words"),
        ("model_top3_server_base", "model top-3 % base (Keras)"), ("model_top3_server", "kblm personalize"),
        ("server_gain", "gain % (rel.)"),
        ("model_top3_phone_base", "base (LiteRT int8)"), ("model_top3_phone", "kblm adapt"),
        ("phone_gain", "gain % (rel.)"), ("share_of_server_gain", "share of server gain %"),
        ("phone_gain_mean", f"gain %, mean of {SEEDS} seeds"), ("share_of_server_gain_mean", "share %, mean of seeds"),
        ("share_range", "share % per seed (mean over users)"),
        ("strip_top3_base", "strip top-3 % base"), ("strip_top3_adapter", "adapter"),
        ("strip_top3_adapter+cache", "adapter+cache"), ("strip_top3_server", "server bundle"),
        ("strip_gain_adapter+cache", "adapter+cache gain %"), ("strip_gain_server", "server gain %"),
        ("strip_share_adapter+cache", "share of server strip gain %"),
        ("ksr_base", "KSR % base"), ("ksr_adapter", "adapter"), ("ksr_adapter+cache", "adapter+cache"),
        ("ksr_server", "server"),
        ("other_top3_base", "other authors: model top-3 % base (LiteRT)"), ("other_top3_server", "server bundle"),
        ("other_top3_phone", "adapter"), ("other_gain_server", "server gain %"),
        ("other_gain_phone_mean", "adapter gain %, mean of seeds"), ("other_share", "share %"),
        ("general_loss_phone", "general loss % adapter"), ("general_loss_server", "server"),
        ("guard_blend", "adapter strength shipped by the guard"),
        ("adapt_seconds_per_5k_words", "s per 5k words (1 core)"), ("peak_memory_mb", "peak MB"),
        ("adapter_share_of_bundle", "adapter % of bundle")]))


if __name__ == "__main__":
    main()
