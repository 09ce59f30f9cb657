"""Golden traces: what the engine did on every keystroke, for the Android app's tests to replay.

Input: a bundle and a script of key events. Output: JSON with, per keystroke, the text
before the cursor, the ids stepped (and how far the engine rewound), the strip and the top
log-probabilities; and every model step with its full log-probability vector (base64
float32), so the app's engine can be driven by the recorded model outputs alone. Each
trace's header (``"engine"``) records the engine's strip options: the strip size, no-repeat,
and the personal cache (its parameters and the pairs it held when the trace started) or
null; the file's header records the bundle (its model's sha256, quantization and strip size).
docs/engine.md §14 describes the format; the rules replayed are the rest of that document.

Key events: a string is typed character by character, except ``"\\b"`` (backspace),
``"\\t1"`` ... ``"\\t9"`` (tap a slot, if the strip has it), ``"\\x1b"`` (reset the field),
``"\\x1a"`` (a cursor jump that lands where it was: the engine resets on the same text,
priming from its window) and ``"\\x10"`` (focus moves to a new, empty private field, e.g. a
password: ``reset(private=True)``; until the next ``"\\x1b"`` the engine only follows the
text, with no model step, an empty strip and no top log-probabilities, nothing learned; a
cursor jump there stays private).
A trace may start in a field that opens with text (``prime``),
longer than the engine's window if need be.
"""
import base64
import json

import numpy as np

from data_pipeline.textio import atomic_write_text
from keyboard_lm.phone.bundle import manifest_strip_size

TOP = 5


class _RecordingRunner:
    """Wraps the engine's StepRunner: logs every step (id, log-probs) the engine makes."""

    def __init__(self, runner, log):
        self._runner, self._log = runner, log

    def __getattr__(self, name):
        return getattr(self._runner, name)

    @property
    def states(self):
        return self._runner.states

    @states.setter
    def states(self, value):
        self._runner.states = value

    def step(self, token):
        log_probs = self._runner.step(token)
        self._log.append({"id": int(token), "log_probs": base64.b64encode(
            np.asarray(log_probs, "<f4").tobytes()).decode()})
        return log_probs


def parse_keys(script):
    """'hello wor\\t1\\bx' -> ['h', ..., 'r', 'TAP1', 'BACKSPACE', 'x'] events (and RESET, JUMP, PRIVATE)."""
    events, i = [], 0
    while i < len(script):
        if script[i] == "\t" and script[i + 1:i + 2] in tuple("123456789"):
            events.append(f"TAP{script[i + 1]}")
            i += 2
            continue
        events.append({"\b": "BACKSPACE", "\x1b": "RESET", "\x1a": "JUMP", "\x10": "PRIVATE"}.get(script[i], script[i]))
        i += 1
    return events


def record(engine, script, name, prime=None):
    """Runs ``script`` through ``engine``; returns the trace dict.

    ``prime`` = (text, learn): the field opens with ``text`` instead of empty (the cache
    learns it only if ``learn``); the trace then holds "prime" and the cache as it was
    before the field opened. With a cache the trace also holds "cache_after".
    """
    steps = []
    engine.runner = _RecordingRunner(engine.runner, steps)
    cache = engine.cache.to_json() if engine.cache is not None else None  # as the trace starts
    engine.reset(*(prime or ()))
    keystrokes = []
    for event in parse_keys(script):
        before_steps, before_fed = len(steps), list(engine.fed_ids)
        if event == "BACKSPACE":
            engine.backspace()
        elif event == "RESET":
            engine.reset()
        elif event == "JUMP":
            engine.reset(engine.text, private=engine.private)  # a jump in a private field stays private
        elif event == "PRIVATE":
            engine.reset(private=True)
        elif event.startswith("TAP"):
            slot = int(event[3:]) - 1
            if slot < len(engine.strip()):
                engine.tap(slot)
        else:
            engine.type(event)
        kept = 0
        while kept < min(len(before_fed), len(engine.fed_ids)) and before_fed[kept] == engine.fed_ids[kept]:
            kept += 1
        top = [] if engine.log_probs is None else np.argsort(-engine.log_probs)[:TOP]  # none in a private field
        keystrokes.append({
            "key": event, "text": engine.text, "prefix": engine.prefix,
            "kept": kept, "fed": engine.fed_ids[kept:], "steps": [before_steps, len(steps)],
            "strip": engine.strip(),
            "top": [{"id": int(i), "token": engine.vocab.tokens[i], "log_prob": round(float(engine.log_probs[i]), 5)}
                    for i in top]})
    engine.runner = engine.runner._runner
    trace = {"name": name, "script": script,
             "engine": {"strip_size": engine.strip_size, "no_repeat": engine.no_repeat, "cache": cache},
             "keystrokes": keystrokes, "model_steps": steps}
    if prime is not None:
        trace["prime"] = {"text": prime[0], "learn": prime[1]}
    if engine.cache is not None:
        trace["cache_after"] = engine.cache.to_json()
    return trace


def write_traces(path, traces, bundle_manifest):
    """Writes the traces with the header of the bundle they came from (each trace's own
    "engine" header says the strip size it was recorded with)."""
    payload = {"format_version": 1, "bundle": {"quantization": bundle_manifest["quantization"],
                                                "model_sha256": bundle_manifest["files"]["model.tflite"]["sha256"],
                                                "strip_size": manifest_strip_size(bundle_manifest)},
               "traces": traces}
    atomic_write_text(path, json.dumps(payload, ensure_ascii=False) + "\n")
