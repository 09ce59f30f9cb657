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

With the user's words on (``engine.user_words``, docs/engine.md §17) three more events:
``"\x0e+WORD\x0e"`` (the user adds WORD), ``"\x0e-WORD\x0e"`` (removes and blocks it) and
``"\x0f"`` (a restart: the user words, and the personal cache if any, are saved to their files
and the engine starts again from them on an empty field). The trace's header then holds
``user_words`` (the file's JSON as the trace starts), each keystroke ``learned`` (the learned
words, [form, commits], as ``kblm words list`` orders them; ``removed`` after a remove, ``saved``
after a restart: the user-word file's text, byte for byte), and the end ``user_words_after``.
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
    """'hello wor\\t1\\bx' -> ['h', ..., 'r', 'TAP1', 'BACKSPACE', 'x'] events (and RESET, JUMP, PRIVATE;
    ADD:WORD, REMOVE:WORD and RESTART for the user's words)."""
    events, i = [], 0
    while i < len(script):
        if script[i] == "\x0e":  # a user-word operation: \x0e+WORD\x0e or \x0e-WORD\x0e
            end = script.index("\x0e", i + 1)
            events.append(("ADD:" if script[i + 1] == "+" else "REMOVE:") + script[i + 2:end])
            i = end + 1
            continue
        if script[i] == "\t" and script[i + 1:i + 2] in tuple("123456789"):
            events.append(f"TAP{script[i + 1]}")
            i += 2
            continue
        events.append({"\b": "BACKSPACE", "\x1b": "RESET", "\x1a": "JUMP", "\x10": "PRIVATE",
                       "\x0f": "RESTART"}.get(script[i], script[i]))
        i += 1
    return events


def record(engine, script, name, prime=None, save_to=None):
    """Runs ``script`` through ``engine``; returns the trace dict.

    ``prime`` = (text, learn): the field opens with ``text`` instead of empty (the cache
    learns it only if ``learn``); the trace then holds "prime" and the cache as it was
    before the field opened. With a cache the trace also holds "cache_after".
    ``save_to``: a directory for the files a RESTART writes and reads again (user words).
    """
    from keyboard_lm.phone.personal_cache import PersonalCache
    from keyboard_lm.phone.user_words import load_or_start, words_path

    steps = []
    engine.runner = _RecordingRunner(engine.runner, steps)
    cache = engine.cache.to_json() if engine.cache is not None else None  # as the trace starts
    user_words = engine.user_words.to_json() if engine.user_words is not None else None
    engine.reset(*(prime or ()))
    keystrokes = []
    for event in parse_keys(script):
        before_steps, before_fed = len(steps), list(engine.fed_ids)
        extra = {}
        if event.startswith("ADD:"):
            engine.user_words.add(event[4:])
        elif event.startswith("REMOVE:"):
            extra["removed"] = engine.user_words.remove(event[7:])
        elif event == "RESTART":  # saved, and read again as a new engine would (§17)
            cache_path = save_to / "cache.json"
            engine.user_words.save(words_path(cache_path))
            extra["saved"] = words_path(cache_path).read_text(encoding="utf-8")
            engine.user_words = load_or_start(words_path(cache_path))
            if engine.cache is not None:
                engine.cache.save(cache_path)
                engine.cache = PersonalCache.load(cache_path, len(engine.vocab))
            engine.reset()
        elif event == "BACKSPACE":
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
                    for i in top], **extra})
        if engine.user_words is not None:
            keystrokes[-1]["learned"] = [list(word) for word in engine.user_words.words()]
    engine.runner = engine.runner._runner
    trace = {"name": name, "script": script,
             "engine": {"strip_size": engine.strip_size, "no_repeat": engine.no_repeat, "cache": cache},
             "keystrokes": keystrokes, "model_steps": steps}
    if prime is not None:
        trace["prime"] = {"text": prime[0], "learn": prime[1]}
    if engine.cache is not None:
        trace["cache_after"] = engine.cache.to_json()
    if user_words is not None:
        trace["engine"]["user_words"] = user_words
        trace["user_words_after"] = engine.user_words.to_json()
    return trace


def write_traces(path, traces, bundle_manifest):
    """Writes the traces with the header of the bundle they came from (each trace's own
    "engine" header says the strip size it was recorded with; a bundle with a lexicon adds
    its sha256, docs/engine.md §16)."""
    header = {"quantization": bundle_manifest["quantization"],
              "model_sha256": bundle_manifest["files"]["model.tflite"]["sha256"],
              "strip_size": manifest_strip_size(bundle_manifest)}
    if "lexicon.tsv.gz" in bundle_manifest["files"]:
        header["lexicon_sha256"] = bundle_manifest["files"]["lexicon.tsv.gz"]["sha256"]
    payload = {"format_version": 1, "bundle": header, "traces": traces}
    atomic_write_text(path, json.dumps(payload, ensure_ascii=False) + "\n")
