"""What a personalization measured, in figures and in words.

``keystroke_savings`` replays the user's messages through the harness (the phone engine on
the base's bundle and on the personalized one: KSR, top-1, top-3); ``format_report`` is the
one line ``kblm personalize`` prints for a user, ``summary_row`` / ``format_summary`` the
many-users table (summary.json, summary.md).
"""
import tempfile
from pathlib import Path

from data_pipeline.errors import KblmError


CACHE_WEIGHTS = (0.05, 0.1, 0.2)  # the personal cache weights tried on the user's messages


def keystroke_savings(base, base_bundle, bundle, quantize, messages, cache_dir, prime=None):
    """KSR and top-3 of the base and the personalized bundle on the user's messages. With
    ``prime`` (the user's messages the fine-tune trained on) also ``after+cache``: the
    personalized bundle as the phone runs it for this user, the personal cache primed on
    ``prime`` and learning their words (docs/engine.md §12, §17), at the weight of
    CACHE_WEIGHTS with the best KSR on ``messages`` (ties: the smaller), reported at that
    weight, with every weight's KSR (``tried``)."""
    from export.exporter import export_run
    from keyboard_lm.phone.bundle import load_bundle
    from keyboard_lm.phone.engine import open_engine
    from keyboard_lm.harness.simulator import EnginePredictor, simulate

    with tempfile.TemporaryDirectory() as scratch:
        if base_bundle is None:
            base_bundle = Path(scratch) / "base-bundle"
            export_run(base, quantize, base_bundle, cache_dir=cache_dir)
        bundles = {"before": load_bundle(base_bundle), "after": load_bundle(bundle)}
        if bundles["before"].vocab.metadata["sha256"] != bundles["after"].vocab.metadata["sha256"]:
            raise KblmError(f"{base_bundle}: its vocabulary is not the base run's; re-export the base")
        out = {}
        for name, loaded in bundles.items():
            report = simulate(EnginePredictor(open_engine(loaded)), messages, progress=False)
            out[name] = {k: report[k] for k in ("ksr", "top1", "top3", "words", "messages")}
        if prime:
            tried = {}
            for weight in CACHE_WEIGHTS:
                engine = open_engine(bundles["after"], cache_weight=weight, prime=prime, learn_words=True)
                tried[weight] = simulate(EnginePredictor(engine), messages, progress=False)
            weight = max(CACHE_WEIGHTS, key=lambda w: (tried[w]["ksr"], -w))
            out["after+cache"] = {**{k: tried[weight][k] for k in ("ksr", "top1", "top3", "words", "messages")},
                                  "cache_weight": weight, "tried": {str(w): r["ksr"] for w, r in tried.items()}}
    return out


def summary_row(report):
    """The summary table's row of a user's report (its figures before -> after)."""
    guard = report.get("forgetting_guard") or {}
    row = {"words": report["words"], "seconds": report["seconds_total"],
           "shipped": guard.get("shipped", "fine-tuned (no guard)"),
           "finetune_seconds": report["finetune_seconds"], "bundle": report.get("bundle_quantization", "")}
    for when in ("before", "after"):
        row[f"user_ppl_{when}"] = report[when]["eval"]["perplexity"]
        row[f"user_top3_{when}"] = report[when]["eval"]["top3"]
        row[f"general_ppl_{when}"] = report[when]["general"]["perplexity"]
        if "ksr" in report:
            row[f"ksr_{when}"] = report["ksr"][when]["ksr"]
    return row


def format_summary(rows):
    lines = ["| user | status | words | user ppl | user top-3 | general ppl | KSR | shipped | seconds | bundle |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if row["status"] == "failed":
            lines.append(f"| {row['user']} | failed: {row['error']} | | | | | | | | |")
            continue
        ksr = (f"{row['ksr_before']:.1%} → {row['ksr_after']:.1%}" if "ksr_before" in row else "")
        lines.append(f"| {row['user']} | {row['status']} | {row['words']:,} | {row['user_ppl_before']:.1f} → "
                     f"{row['user_ppl_after']:.1f} | {row['user_top3_before']:.1%} → {row['user_top3_after']:.1%} | "
                     f"{row['general_ppl_before']:.1f} → {row['general_ppl_after']:.1f} | {ksr} | {row.get('shipped', '')} | "
                     f"{row['seconds']:.0f} | "
                     f"{row.get('bundle', '')} |")
    return "\n".join(lines)


def format_report(report):
    b, a = report["before"], report["after"]
    chosen = (" (held-out slice, the chosen epoch before the final pass)"
              if report.get("user_after_before_final_pass") else "")
    text = (f"{report['user']}: user text perplexity {b['eval']['perplexity']:.1f} -> {a['eval']['perplexity']:.1f}, "
            f"top-3 {b['eval']['top3']:.1%} -> {a['eval']['top3']:.1%}{chosen}; general perplexity "
            f"{b['general']['perplexity']:.1f} -> {a['general']['perplexity']:.1f}")
    if report.get("warnings") and "eval_known" in b:
        text += f" (top-3 over known words {b['eval_known']['top3']:.1%} -> {a['eval_known']['top3']:.1%})"
    if "ksr" in report:
        text += f"; KSR {report['ksr']['before']['ksr']:.1%} -> {report['ksr']['after']['ksr']:.1%}"
        cached = report["ksr"].get("after+cache")
        if cached:
            text += (f", {cached['ksr']:.1%} with the personal cache and learned words (best --cache-weight "
                     f"{cached['cache_weight']:g} on these messages)")
    guard = report.get("forgetting_guard")
    if guard and guard["backed_off"]:
        text += (f"; forgetting guard: shipped {guard['shipped']} (general loss +{guard['shipped_rise']:.1%}), "
                 f"as {guard['why']}")
    if "quantize_fallback_reason" in report:
        text += f"; bundle in {report['bundle_quantization']} ({report['quantize_fallback_reason']})"
    return text + (f" (fine-tune {report['finetune_seconds']:.0f} s, total {report['seconds_total']:.0f} s, "
                   f"peak memory {report['peak_rss_mb']:.0f} MB)")
