"""Keystroke-savings simulator: a user types text character by character and taps a
suggestion as soon as the intended word is in the strip. numpy only (plus the predictor).

Input: a predictor (anything with ``reset(text="")`` and ``suggestions(text) -> [words]``
for the text before the cursor) and messages. Output: a report (docs/simulator.md defines
every figure):

    KSR   = 1 - keystrokes with prediction / keystrokes without
            (without: one keystroke per character; with: characters typed + one per tap,
            a tap also enters the space after the word)
    top-k = share of words that are in the first k slots before any of their
            characters is typed
    A tap may take any slot of the strip (as many as the engine shows: the bundle's strip
    size, docs/engine.md §3); top-1 and top-3 count the first one and three slots.
    A suggestion matches the intended word ignoring case (the keyboard applies casing;
    engines that only suggest lowercase, like Presage, are not penalised for it).
    latency = time of each suggestions() call, one per keystroke (p50, p99)
    reachable words = share of words the strip could ever show (a vocabulary, lexicon or
            learned word; asked as each word starts), for predictors that can tell
"""
import statistics
import time

import numpy as np
from data_pipeline.progress import progress as tqdm

from data_pipeline import tokenization


class EnginePredictor:
    """The keyboard-lm engine (``KeyboardEngine``) behind the predictor interface."""

    def __init__(self, engine, name="keyboard-lm"):
        self.engine, self.name = engine, name

    def reset(self, text=""):
        self.engine.reset(text)

    def suggestions(self, text):
        self.engine.set_text(text)
        return self.engine.strip()

    def reachable(self, word):
        return self.engine.reachable(word)


def word_spans(message):
    """(start, end) of each word the user types (punctuation is never suggested)."""
    return [(s, e) for s, e in tokenization.token_spans(message) if tokenization.is_word(message[s:e])]


def simulate_message(predictor, message, counts, latencies):
    predictor.reset()
    ends = {start: end for start, end in word_spans(message)}
    inside = {}  # position -> (start, end) of the word it lies in
    for start, end in ends.items():
        for i in range(start, end):
            inside[i] = (start, end)
    i = 0
    while i < len(message):
        started = time.perf_counter()
        strip = predictor.suggestions(message[:i])
        latencies.append(time.perf_counter() - started)
        if i in inside:
            start, end = inside[i]
            word = message[start:end].lower()
            strip = [w.lower() for w in strip]
            if i == start:
                counts["words"] += 1
                if hasattr(predictor, "reachable"):
                    counts["reachable"] += predictor.reachable(message[start:end])
                counts["top1"] += word in strip[:1]
                counts["top3"] += word in strip[:3]
            if word in strip:
                counts["keystrokes"] += 1  # the tap
                i = end + (1 if message[end:end + 1] == " " else 0)
                continue
        counts["keystrokes"] += 1
        i += 1
    counts["characters"] += len(message)


def simulate(predictor, messages, progress=True):
    """Runs every message (each in a fresh text field); returns the report dict."""
    counts = {"keystrokes": 0, "characters": 0, "words": 0, "top1": 0, "top3": 0, "reachable": 0}
    latencies = []
    for message in tqdm(messages, desc=f"simulating {getattr(predictor, 'name', '')}", unit=" msg",
                        disable=not progress, mininterval=1):
        simulate_message(predictor, message, counts, latencies)
    ms = np.array(latencies) * 1000 if latencies else np.zeros(1)
    return {
        "predictor": getattr(predictor, "name", type(predictor).__name__),
        "messages": len(messages), "characters": counts["characters"], "words": counts["words"],
        "keystrokes_without": counts["characters"], "keystrokes_with": counts["keystrokes"],
        "ksr": 1 - counts["keystrokes"] / max(counts["characters"], 1),
        "top1": counts["top1"] / max(counts["words"], 1), "top3": counts["top3"] / max(counts["words"], 1),
        "reachable": counts["reachable"] / max(counts["words"], 1) if hasattr(predictor, "reachable") else None,
        "latency_ms": {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
                       "mean": float(statistics.fmean(ms))},
    }


def format_report(report):
    reachable = report.get("reachable")
    return (f"{report['predictor']}: KSR {report['ksr']:.1%} "
            + (f"(reachable words {reachable:.1%}) " if reachable is not None else "")
            + f"({report['keystrokes_with']:,} of "
            f"{report['keystrokes_without']:,} keystrokes), top-1 {report['top1']:.1%}, top-3 "
            f"{report['top3']:.1%} over {report['words']:,} words in {report['messages']:,} messages; "
            f"per-keystroke latency p50 {report['latency_ms']['p50']:.3f} ms, "
            f"p99 {report['latency_ms']['p99']:.3f} ms")
