"""The keyboard engine (the phone's loop): strip rules, completion, casing, sentence ends,
backspace from the state stack, priming; the simulator; golden traces; the terminal demo."""
import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_pipeline import tokenization
from data_pipeline.vocab import BOS_ID, EOS_ID
from keyboard_lm.phone.bundle import load_bundle
from keyboard_lm.cli import main
from keyboard_lm.phone.keyboard import KeyboardEngine
from keyboard_lm.phone.personal_cache import PersonalCache
from keyboard_lm.harness.simulator import EnginePredictor, simulate
from keyboard_lm.phone.traces import record


@pytest.fixture(scope="module")
def bundle(toy_bundle):
    return load_bundle(toy_bundle)


@pytest.fixture
def engine(bundle):
    return KeyboardEngine(bundle)


def assert_valid_strip(engine, strip):
    assert len(strip) <= engine.strip_size and len({w.lower() for w in strip}) == len(strip)
    for word in strip:
        assert word not in ("<pad>", "<unk>", "<bos>", "<eos>") and tokenization.is_word(word)


def test_next_words_and_completion(engine):
    engine.set_text("see you at the ")
    assert "station" in engine.strip() and engine.prefix == ""
    engine.reset("see you at the sta")  # (reset: "station" was shown and passed over above)
    assert engine.prefix == "sta" and engine.strip()[0] == "station"
    engine.reset("see you at the STA")
    assert engine.strip()[0] == "STATION"


def test_capitalisation(engine):
    engine.reset()
    assert all(w[0].isupper() for w in engine.strip())  # sentence start
    engine.set_text("see you soon . ")
    assert all(w[0].isupper() for w in engine.strip())
    engine.set_text("see you soon . I will call you tomorrow . ")
    assert "I" in engine.strip()  # "i" is always capitalised
    engine.set_text("see you at the Sta")
    assert engine.strip()[0] == "Station"  # the typed prefix's casing is kept


def test_sentence_end_closes_the_sentence_like_training(engine, bundle):
    engine.set_text("see you soon . ")
    dot = bundle.vocab.id(".")
    assert engine.fed_ids[-3:] == [dot, EOS_ID, BOS_ID]


def test_backspace_restores_state_without_rerunning(engine, bundle):
    calls = []
    step = engine.runner.step
    engine.runner.step = lambda token: calls.append(token) or step(token)
    engine.set_text("see you at the station ")
    typed = list(engine.log_probs)
    calls.clear()
    engine.backspace()  # back into "station": it is a prefix again
    assert engine.prefix == "station" and len(calls) == 1  # one re-step, not a re-run
    fresh = KeyboardEngine(bundle)
    fresh.set_text("see you at the station")
    np.testing.assert_allclose(engine.log_probs, fresh.log_probs, atol=1e-6)
    engine.type(" ")
    np.testing.assert_allclose(engine.log_probs, typed, atol=1e-6)


def test_priming_equals_typing(engine, bundle):
    text = "i think the train is late . see you at the "
    primed = KeyboardEngine(bundle)
    primed.reset(text)
    engine.reset()
    for ch in text:
        engine.type(ch)
    assert primed.fed_ids == engine.fed_ids
    np.testing.assert_allclose(primed.log_probs, engine.log_probs, atol=1e-5)
    assert primed.strip() == engine.strip()


def test_passed_over_words_are_not_offered_again(bundle):
    engine = KeyboardEngine(bundle)
    engine.set_text("see you at the ")
    shown = engine.strip()
    engine.type("s")
    later = engine.strip()
    assert later and not {w.lower() for w in shown} & {w.lower() for w in later}
    repeating = KeyboardEngine(bundle, no_repeat=False)
    repeating.set_text("see you at the s")
    assert repeating.strip()[0] == "station" and "station" in shown  # what no-repeat held back
    engine.backspace()  # a correction: everything is offered again
    assert engine.strip() == shown
    engine.type("stat")
    engine.type("ion ")  # the next word starts with a clean slate
    fresh = KeyboardEngine(bundle)
    fresh.reset("see you at the station ")
    assert engine.strip() == fresh.strip()


def test_no_repeat_only_helps_in_the_simulator(bundle):
    from tests.conftest import KEYBOARD_SENTENCES

    plain = simulate(EnginePredictor(KeyboardEngine(bundle, no_repeat=False)), KEYBOARD_SENTENCES, progress=False)
    no_repeat = simulate(EnginePredictor(KeyboardEngine(bundle)), KEYBOARD_SENTENCES, progress=False)
    assert no_repeat["ksr"] >= plain["ksr"]


def test_personal_cache_learns_committed_words_and_forgets_deleted_ones(bundle):
    cache = PersonalCache(len(bundle.vocab), 0.5)
    engine = KeyboardEngine(bundle, cache=cache)
    engine.reset("we met at the park . ")
    assert len(cache) == 0  # a field's existing text is not learned again
    engine.reset("we met at the park . ", learn=True)
    learned = len(cache)
    assert learned == 5  # we met at the park (punctuation is not learned)
    engine.set_text("we met at the park . we met at the ")
    park = bundle.vocab.id("park")
    assert engine.scores()[park] > engine.log_probs[park] + 0.5  # "the park" is now likely
    assert np.exp(engine.scores()).sum() == pytest.approx(1.0, abs=1e-4)
    engine.backspace()
    engine.backspace()  # back into "the": it is being typed again, so not learned
    assert len(cache) == learned + 3
    engine.reset()  # a new field: what was committed stays learned
    assert len(cache) == learned + 3


def test_personal_cache_persists_and_rejects_bad_files(bundle, tmp_path):
    from data_pipeline.errors import KblmError

    cache = PersonalCache(len(bundle.vocab), 0.2, capacity=4)
    for word in ("see", "you", "at", "the", "station"):
        cache.add(0, bundle.vocab.id(word))
    assert len(cache) == 4  # the oldest word was evicted
    cache.remove_last()  # ... and comes back when the word that pushed it out is deleted
    assert cache.to_json()["pairs"][0] == [0, bundle.vocab.id("see")] and len(cache) == 4
    cache.add(0, bundle.vocab.id("station"))
    cache.save(tmp_path / "cache.json")
    loaded = PersonalCache.load(tmp_path / "cache.json", len(bundle.vocab))
    assert loaded.to_json() == cache.to_json()
    np.testing.assert_allclose(loaded.mix(np.log(np.full(len(bundle.vocab), 1 / len(bundle.vocab))), 0),
                               cache.mix(np.log(np.full(len(bundle.vocab), 1 / len(bundle.vocab))), 0))
    with pytest.raises(KblmError, match="field vocab_size"):
        PersonalCache.load(tmp_path / "cache.json", len(bundle.vocab) + 1)
    (tmp_path / "bad.json").write_text('{"format_version": 1, "vocab_size": %d, "weight": 0.1, "capacity": 9, '
                                       '"smoothing": 1, "pairs": [[0, 99999]]}' % len(bundle.vocab))
    with pytest.raises(KblmError, match=r"pairs\[0\]"):
        PersonalCache.load(tmp_path / "bad.json", len(bundle.vocab))
    with pytest.raises(KblmError, match="cache weight"):
        PersonalCache(10, 1.0)
    with pytest.raises(KblmError, match="smoothing"):
        PersonalCache(10, 0.1, smoothing=0.0)


def test_tap_commits_word_and_space(engine):
    engine.set_text("see you at the sta")
    assert engine.tap(0) == "station" and engine.text == "see you at the station "
    engine.set_text("see you soon.")  # straight after punctuation: the word gets its space
    word = engine.tap(0)
    assert engine.text == f"see you soon. {word} "
    engine.set_text("i don’t be la")  # a curly apostrophe earlier in the text
    assert engine.tap(0) == "late" and engine.text == "i don’t be late "


@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(keys=st.lists(st.one_of(
    st.sampled_from(list("seyoutanhi .!?,'-") + ["BS", "BS", "TAP1", "TAP3", "RESET"]),
    st.characters(exclude_categories=("Cs",)),
    st.sampled_from(["👍🏽", "مرحبا", "e\u0301", "\x00", "\u202e", "x" * 300])), max_size=25))
def test_random_keystroke_streams_never_break_the_strip(bundle, keys):
    engine = _shared_engine(bundle)
    engine.cache = PersonalCache(len(bundle.vocab), 0.3)  # a cache learning this stream only
    engine.reset()
    fields = []
    for key in keys:
        if key == "BS":
            engine.backspace()
        elif key == "RESET":
            fields.append(engine.text)
            engine.reset()
        elif key.startswith("TAP"):
            strip = engine.strip()
            if int(key[3]) <= len(strip):
                engine.tap(int(key[3]) - 1)
        else:
            engine.type(key)
        assert_valid_strip(engine, engine.strip())
    from keyboard_lm.phone.keyboard import CONTEXT_CHARS

    if any(len(text) > CONTEXT_CHARS for text in (*fields, engine.text)):
        return  # beyond the window a fresh reset reads only the window (long fields: tested below)
    fresh = _shared_engine(bundle, fresh=True)
    fresh.cache = PersonalCache(len(bundle.vocab), 0.3)
    for text in fields:
        fresh.reset(text, learn=True)
    fresh.reset(engine.text, learn=True)  # incremental state == state primed from the same text
    assert fresh.fed_ids == engine.fed_ids
    # the cache learned exactly the words that stayed in each field, whatever was deleted
    assert fresh.cache.to_json()["pairs"] == engine.cache.to_json()["pairs"]


# -- long fields: a bounded window and checkpoints (cost per keystroke independent of length) --

def _spec_ids(engine, text):
    """What the engine must have fed for ``text`` from its window's base, by the plain tokenizer."""
    tokens = tokenization.tokenize(text[engine._base:], engine.options)
    prefix = tokens.pop() if tokens and not tokenization.ends_with_space(text) and tokenization.is_word(tokens[-1]) else ""
    ids = [BOS_ID]
    for token in tokens:
        ids += [engine.vocab.id(token)] + ([EOS_ID, BOS_ID] if token in tokenization.SENTENCE_ENDS else [])
    return ids, prefix


def _long_text(length, seed=0):
    from tests.conftest import KEYBOARD_SENTENCES

    rng = np.random.default_rng(seed)
    text = ""
    while len(text) < length:
        text += KEYBOARD_SENTENCES[rng.integers(len(KEYBOARD_SENTENCES))] + " "
    return text[:length]


def test_every_whitespace_code_point_is_a_hard_tokenization_boundary():
    """The checkpoint proof (docs/engine.md §9): NFKC never merges across whitespace."""
    import unicodedata

    nfkc = tokenization._compiled()["nfkc"]
    pairs = set()
    for cp in range(0x110000):
        mapping = unicodedata.decomposition(chr(cp))
        if mapping and not mapping.startswith("<") and len(mapping.split()) == 2:
            pairs.update(int(x, 16) for x in mapping.split())
    spaces = [cp for lo, hi in tokenization.WHITESPACE_RANGES for cp in range(lo, hi + 1)]
    assert len(spaces) == 84
    for cp in spaces:
        mapped = chr(cp).translate(nfkc)
        assert len(mapped) == 1 and tokenization.ends_with_space(mapped), hex(cp)
        assert unicodedata.combining(mapped) == 0 and unicodedata.normalize("NFKC", mapped) == mapped, hex(cp)
        assert ord(mapped) not in pairs and not 0x1100 <= ord(mapped) <= 0x11FF, hex(cp)  # composes with nothing


_PIECES = st.one_of(st.characters(), st.sampled_from(
    ["👍", "🏽", "\u200d", "\ufe0f", "🇺", "🇸", "\u0301", "\u0308", "\u0345", "\u1161", "\u11a8", "\u3099",
     ".", "!", "?", "．", "'", "-", "3", ",", "x", "\u00b4", "\u00a8", "ﬁ"]))
_SPACE_PIECES = st.sampled_from([" ", "\t", "\n", "\x00", "\x85", "\u00a0", "\u1680", "\u2000", "\u2028",
                                 "\u202f", "\u3000", "  "])


@settings(max_examples=3_000, deadline=None)
@given(before=st.lists(_PIECES, max_size=12).map("".join), space=_SPACE_PIECES,
       after=st.lists(_PIECES, max_size=12).map("".join))
def test_tokens_split_at_whitespace(before, space, after):
    """tokenize(text) == tokenize(text[:p]) + tokenize(text[p:]) after any whitespace, and the
    engine's chunks of a text are its tokens."""
    from keyboard_lm.phone.keyboard import chunks

    head = before + space
    assert tokenization.tokenize(head + after) == tokenization.tokenize(head) + tokenization.tokenize(after)
    assert tokenization.token_spans(head + after) == (
        tokenization.token_spans(head) + [(s + len(head), e + len(head)) for s, e in tokenization.token_spans(after)])
    text = head + after + space + before
    pieces, rest = chunks(text, 0, tokenization.TokenizerOptions())
    assert sum((tokens for _, tokens in pieces), []) + rest == tokenization.tokenize(text)
    assert all(tokenization.ends_with_space(text[:end]) for end, _ in pieces)


def _counting_tokenizer(monkeypatch):
    """Counts the characters the engine hands to the tokenizer (tokenize and token_spans)."""
    read = [0]
    for name in ("tokenize", "token_spans"):
        real = getattr(tokenization, name)

        def counted(text, *args, real=real):
            read[0] += len(text)
            return real(text, *args)

        monkeypatch.setattr(tokenization, name, counted)
    return read


def test_keystroke_cost_does_not_grow_with_the_field(bundle, monkeypatch):
    """At the end of a 100,000-character field, each keystroke tokenizes only the last word or
    so, and steps the model only on the new ids; a reset reads only the window."""
    from keyboard_lm.phone.keyboard import CONTEXT_CHARS

    steps = []
    engine = KeyboardEngine(bundle)
    step = engine.runner.step
    engine.runner.step = lambda token: steps.append(token) or step(token)
    read = _counting_tokenizer(monkeypatch)
    text = _long_text(100_000)
    engine.reset(text)
    assert read[0] <= 2 * CONTEXT_CHARS and len(steps) <= CONTEXT_CHARS // 2
    assert engine._base >= len(text) - CONTEXT_CHARS
    worst_read = worst_steps = 0
    for key in list("see you at the station tomorrow . ") + ["BS"] * 12 + list("park tonight ! we met at the s") + ["TAP1"]:
        read[0], steps[:] = 0, []
        if key == "BS":
            engine.backspace()
        elif key == "TAP1":
            engine.tap(0)
        else:
            engine.type(key)
        engine.strip()
        worst_read, worst_steps = max(worst_read, read[0]), max(worst_steps, len(steps))
    assert worst_read <= 60 and worst_steps <= 4  # the whole text was re-tokenized before the window
    read[0], steps[:] = 0, []
    engine.set_text(engine.text[:-1500])  # a cut deeper than the state stack: re-prime on the window
    assert read[0] <= 2 * CONTEXT_CHARS and len(steps) <= CONTEXT_CHARS // 2
    assert (engine.fed_ids, engine.prefix) == _spec_ids(engine, engine.text)


def test_long_field_equals_a_fresh_engine_on_its_window(bundle, monkeypatch):
    """Typing, backspacing across checkpoints and a mid-window edit at the end of a long field
    give what a fresh engine primed on the window's text gives: ids, log-probs and strips."""
    from keyboard_lm.phone import keyboard

    text = _long_text(5_000, seed=1)
    engine = KeyboardEngine(bundle)
    engine.reset(text)
    base = engine._base
    assert 0 < base and engine.text[base - 2:base] == ". "  # the window starts at a sentence start
    fresh = KeyboardEngine(bundle)

    def same():
        assert engine._base == base
        with monkeypatch.context() as wide:  # the window's text has grown past CONTEXT_CHARS by now
            wide.setattr(keyboard, "CONTEXT_CHARS", 10**6)
            fresh.reset(engine.text[base:])
        assert (engine.fed_ids, engine.prefix) == (fresh.fed_ids, fresh.prefix) == _spec_ids(engine, engine.text)
        np.testing.assert_allclose(engine.log_probs, fresh.log_probs, atol=1e-5)
        assert engine.strip() == fresh.strip()

    for ch in "i think the train is late . see you at the sta":
        engine.type(ch)
    same()
    for _ in range(25):  # back across five words and a sentence end
        engine.backspace()
    same()
    middle = len(engine.text) - 600  # an edit inside the window (a paste over a word)
    cut = engine.text.index(" ", middle)
    engine.set_text(engine.text[:middle] + " we met at the park" + engine.text[cut:])
    same()
    engine.set_text(engine.text + " s")  # a paste ending in a new word
    same()


def test_window_start_without_sentence_ends_or_spaces(bundle, monkeypatch):
    from keyboard_lm.phone import keyboard

    monkeypatch.setattr(keyboard, "CONTEXT_CHARS", 20)
    engine = KeyboardEngine(bundle)
    engine.reset("see you at the station tomorrow at the sta")  # no sentence end: the first word boundary
    assert engine._base == len("see you at the station ") and engine.prefix == "sta"
    engine.reset("x" * 50 + "station")  # no whitespace at all: a hard cut, 20 characters back
    assert engine._base == 37 and engine.prefix == "x" * 13 + "station"
    engine.reset("see you soon . " * 3)  # the window (from 25) starts at the first sentence start in it
    assert engine._base == 30 and engine.fed_ids == _spec_ids(engine, engine.text)[0] and len(engine.fed_ids) == 7


@settings(max_examples=1_500, deadline=None, suppress_health_check=list(HealthCheck))
@given(keys=st.lists(st.one_of(
    st.sampled_from(list("seyoutanhi .!?,'-") + ["BS", "BS", "BS5", "TAP1", "JUMP", "CUT", "EDIT"]),
    st.sampled_from(["👍🏽 ", "e\u0301 ", "\x00", "\u00a0", "station ", "x" * 30])), max_size=40),
    opening=st.integers(0, 120))
def test_small_window_keeps_the_invariant(bundle, keys, opening):
    """With a 40-character window: after any keystroke, fed ids are the spec's ids of the text
    from the window's base, and every checkpoint splits the text's tokens."""
    from keyboard_lm.phone import keyboard

    engine = _shared_engine(bundle)
    saved, keyboard.CONTEXT_CHARS = keyboard.CONTEXT_CHARS, 40
    try:
        engine.reset(_long_text(opening, seed=opening))
        for key in keys:
            if key in ("BS", "BS5"):
                for _ in range(5 if key == "BS5" else 1):
                    engine.backspace()
            elif key == "TAP1":
                if engine.strip():
                    engine.tap(0)
            elif key == "JUMP":
                engine.reset(engine.text)
            elif key == "CUT":
                engine.set_text(engine.text[:len(engine.text) // 2])
            elif key == "EDIT":
                engine.set_text(engine.text[:len(engine.text) // 2] + "we met" + engine.text[len(engine.text) // 2:])
            else:
                engine.type(key)
            assert (engine.fed_ids, engine.prefix) == _spec_ids(engine, engine.text)
            for pos, count in engine._marks[1:]:
                assert tokenization.ends_with_space(engine.text[:pos])
                assert engine.fed_ids[:count] == _spec_ids(engine, engine.text[:pos])[0]
            assert_valid_strip(engine, engine.strip())
    finally:
        keyboard.CONTEXT_CHARS = saved


_ENGINES = {}


def _shared_engine(bundle, fresh=False):
    key = "fresh" if fresh else "main"
    if key not in _ENGINES:
        _ENGINES[key] = KeyboardEngine(bundle)
    return _ENGINES[key]


class OraclePredictor:
    """Knows the message being typed and always suggests the intended word (tests the simulator)."""

    name = "oracle"

    def __init__(self, message):
        self.spans = [(s, e) for s, e in tokenization.token_spans(message)
                      if tokenization.is_word(message[s:e])]
        self.message = message

    def reset(self, text=""):
        pass

    def suggestions(self, text):
        i = len(text)
        return [self.message[s:e] for s, e in self.spans if s <= i < e][:1]


class SilentPredictor:
    name = "silent"

    def reset(self, text=""):
        pass

    def suggestions(self, text):
        return []


def test_simulator_definitions():
    message = "see you, soon"  # 13 characters, 3 words
    report = simulate(OraclePredictor(message), [message], progress=False)
    # taps: "see"+space (1), "you" (1), "," (1, typed), " " (1, typed), "soon" (1) = 5
    assert report["keystrokes_with"] == 5 and report["keystrokes_without"] == 13
    assert report["ksr"] == pytest.approx(1 - 5 / 13) and report["top1"] == 1.0
    silent = simulate(SilentPredictor(), [message], progress=False)
    assert silent["ksr"] == 0.0 and silent["top3"] == 0.0


def test_engine_in_the_simulator(bundle):
    from tests.conftest import KEYBOARD_SENTENCES

    report = simulate(EnginePredictor(KeyboardEngine(bundle)), KEYBOARD_SENTENCES, progress=False)
    assert report["ksr"] > 0.4 and report["top3"] > 0.5  # a model that learned the toy corpus
    assert report["latency_ms"]["p50"] > 0


def test_traces_are_deterministic_and_complete(bundle):
    script = "see you at the sta\t1\b\bx\x1bi think"
    first = record(KeyboardEngine(bundle), script, "t")
    second = record(KeyboardEngine(bundle), script, "t")
    assert json.dumps(first) == json.dumps(second)
    keys = [k["key"] for k in first["keystrokes"]]
    assert "TAP1" in keys and "BACKSPACE" in keys and "RESET" in keys
    import base64

    vector = np.frombuffer(base64.b64decode(first["model_steps"][0]["log_probs"]), "<f4")
    assert vector.shape == (len(bundle.vocab),) and first["model_steps"][0]["id"] == BOS_ID
    assert first["engine"] == {"strip_size": 3, "no_repeat": True, "cache": None}
    cached = KeyboardEngine(bundle, cache=PersonalCache(len(bundle.vocab), 0.2))
    cached.reset("see you soon . ", learn=True)
    trace = record(cached, script, "c")
    assert trace["engine"]["cache"]["pairs"][:3] == [[BOS_ID, bundle.vocab.id("see")], [bundle.vocab.id("see"),
                                                     bundle.vocab.id("you")], [bundle.vocab.id("you"),
                                                                               bundle.vocab.id("soon")]]


def test_strip_size_comes_from_the_manifest(bundle, toy_bundle, tmp_path):
    """docs/engine.md §3: the strip holds the manifest's engine.strip_size words (an engine may
    be given another); the same ranking, only longer or shorter; taps reach every slot."""
    from keyboard_lm.phone.traces import parse_keys

    directory = tmp_path / "five"
    shutil.copytree(toy_bundle, directory)
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["engine"] = {"strip_size": 5}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    five, three = KeyboardEngine(load_bundle(directory)), KeyboardEngine(bundle)
    assert (five.strip_size, three.strip_size, KeyboardEngine(bundle, strip_size=2).strip_size) == (5, 3, 2)
    for text in ("", "see you at the ", "see you at the s", "i think the tr"):
        five.set_text(text)
        three.set_text(text)
        assert five.strip()[:3] == three.strip(), text
    five.set_text("see you at the ")
    assert len(five.strip()) == 5
    word = five.strip()[4]
    assert five.tap(4) == word and five.text == f"see you at the {word} "
    assert parse_keys("a\t5\t9\t0") == ["a", "TAP5", "TAP9", "\t", "0"]


def test_harness_is_tensorflow_free(toy_bundle):
    code = ("import sys; sys.modules['tensorflow'] = None\n"
            "from keyboard_lm.phone.bundle import load_bundle\n"
            "from keyboard_lm.phone.keyboard import KeyboardEngine\n"
            "from keyboard_lm.harness.simulator import simulate, EnginePredictor\n"
            "from keyboard_lm.phone import bundle, inspect, personal_cache, runtime, traces\n"
            "from keyboard_lm.harness import presage, simulator, terminal\n"
            f"e = KeyboardEngine(load_bundle({str(toy_bundle)!r})); e.set_text('see you at the sta')\n"
            "assert e.strip()\n"
            "assert not any(m.startswith(('tensorflow', 'keras')) for m in sys.modules if sys.modules[m])\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_suggest_simulate_trace(toy_bundle, tmp_path, capsys):
    assert main(["suggest", str(toy_bundle), "see you at the sta"]) == 0
    assert "[1] station" in capsys.readouterr().out
    text = tmp_path / "t.txt"
    text.write_text("see you at the station tomorrow .\ni think the train is late .\n")
    assert main(["simulate", str(toy_bundle), "--text", str(text), "--json", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())[0]["messages"] == 2
    keys = tmp_path / "keys.txt"
    keys.write_text("see you at the sta\\t1\\b\n")
    assert main(["trace", str(toy_bundle), "--keys", str(keys), "--escapes", "--out", str(tmp_path / "tr.json")]) == 0
    assert json.loads((tmp_path / "tr.json").read_text())["traces"][0]["keystrokes"][-1]["key"] == "BACKSPACE"
    assert main(["trace", str(toy_bundle), "--keys", str(keys), "--escapes", "--out", str(tmp_path / "o.json"),
                 "--opening", "we met at the park . i think ", "--cache-weight", "0.2"]) == 0
    opened = json.loads((tmp_path / "o.json").read_text())["traces"][0]
    assert opened["prime"] == {"text": "we met at the park . i think ", "learn": False}
    assert opened["keystrokes"][0]["text"] == "we met at the park . i think s"
    assert opened["engine"]["cache"]["pairs"] == []  # as the trace started
    park = load_bundle(toy_bundle).vocab.id("park")
    assert opened["cache_after"]["pairs"] and park not in sum(opened["cache_after"]["pairs"], [])  # not learned


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_type_demo_under_tmux(toy_bundle, tmp_path):
    session = f"kblm{time.monotonic_ns()}"
    # --repeat: typing "s" passes over "station" (on the strip after "the"); keep it offered
    command = f"{sys.executable} -m keyboard_lm.cli type {toy_bundle} --repeat"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "10", command], check=True)
    try:
        def screen():
            return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                                  text=True).stdout

        def wait_for(text):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if text in screen():
                    return True
                time.sleep(0.2)
            return False

        assert wait_for("[1]"), screen()
        subprocess.run(["tmux", "send-keys", "-t", session, "-l", "see you at the sta"], check=True)
        assert wait_for("[1] station"), screen()
        subprocess.run(["tmux", "send-keys", "-t", session, "Tab"], check=True)
        assert wait_for("> see you at the station"), screen()  # (tmux trims the trailing space)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_private_field_steps_nothing_and_learns_nothing(bundle):
    """A password (or no-suggestions) field: reset(text, private=True) follows the text only:
    no model step, an empty strip, nothing cached; the next ordinary reset suggests again."""
    cache = PersonalCache(len(bundle.vocab), 0.3)
    engine = KeyboardEngine(bundle, cache=cache)
    engine.reset("we met at the park . ", learn=True)
    learned = json.dumps(cache.to_json(), sort_keys=True)
    steps = []
    step = engine.runner.step
    engine.runner.step = lambda token: steps.append(token) or step(token)
    engine.reset("my secret is hunter", private=True)
    assert engine.strip() == [] and engine.text == "my secret is hunter"
    for keys in ("2 ", "and the station . ", "see you at the sta"):
        engine.type(keys)
        assert engine.strip() == []
    engine.backspace()
    engine.set_text("other text ")
    assert engine.strip() == [] and engine.fed_ids == []
    with pytest.raises(IndexError):
        engine.tap(0)  # nothing was shown, nothing to take
    assert steps == [], "a private field stepped the model"
    assert json.dumps(cache.to_json(), sort_keys=True) == learned, "a private field changed the cache"
    engine.reset("see you at the sta")
    assert steps and engine.strip()[0] == "station" and not engine.private


def test_trace_private_stretch_steps_nothing_and_learns_nothing(bundle):
    """A trace's "\\x10" (PRIVATE) opens an empty private field: until "\\x1b" (RESET) every
    keystroke (typing, a tap, a backspace, a cursor jump) follows the text only: no model step,
    no ids, an empty strip and no log-probabilities; the cache ends as if the stretch never was."""
    def traced(script):
        cache = PersonalCache(len(bundle.vocab), 0.3, 16)
        engine = KeyboardEngine(bundle, cache=cache)
        engine.reset("we met at the park . ", learn=True)
        return record(engine, script, "p")

    stretch = "\x10we met at the park tonight . the sta\t1\b\b\bx\x1a i think"
    before, after = "we met at the pa\t1", "\x1bsee you at the pa\t1. i"
    trace, plain = traced(before + stretch + after), traced(before + after)
    keys = [k["key"] for k in trace["keystrokes"]]
    start, end = keys.index("PRIVATE"), keys.index("RESET")
    assert "TAP1" in keys[start:end] and "BACKSPACE" in keys[start:end] and "JUMP" in keys[start:end]
    text = ""
    for key in trace["keystrokes"][start:end]:
        text = "" if key["key"] == "PRIVATE" else text[:-1] if key["key"] == "BACKSPACE" else \
            text if key["key"] in ("JUMP", "TAP1") else text + key["key"]
        assert key["text"] == text and key["prefix"] == "" and key["fed"] == [] and key["strip"] == [] \
            and key["top"] == [] and key["steps"][0] == key["steps"][1], key
    assert trace["keystrokes"][end]["fed"] == [BOS_ID] and trace["keystrokes"][end]["strip"]
    assert trace["cache_after"] == plain["cache_after"], "a private field changed the cache"
    # after the RESET the two traces agree keystroke by keystroke (steps shift by none either)
    assert trace["keystrokes"][end + 1:] == plain["keystrokes"][start + 1:]
    assert trace["model_steps"] == plain["model_steps"]
