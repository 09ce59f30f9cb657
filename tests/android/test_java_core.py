"""The Android app's core/ (plain Java): its fixtures are current, and its JUnit 5 tests pass
against golden traces of the Python engine on the toy bundle (compiled with javac, no Gradle).

Needs the JDK, JUnit 5 and Android's org.json (Debian: default-jdk-headless junit5
libandroid-json-java; .ci/run installs them). Missing tools fail the test, they never skip it.
"""
import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from data_pipeline.tokenization import TABLES_PATH

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "android_demo"
CORE = DEMO / "core"
JARS = {"junit5": Path("/usr/share/java/junit-platform-console-standalone.jar"),
        "libandroid-json-java": Path("/usr/share/java/com.android.json.jar")}

# Key scripts (keyboard_lm.phone.traces.parse_keys): \b backspace, \t1-\t9 tap a slot, \x1b reset,
# \x1a cursor jump, \x10 a new private (password) field until the next \x1b.
TRACES = {
    "completion-taps-sentence-ends": "see you at the sta\t1i will call you tomorrow. I think the tr\t1is late! "
                                     "Are you at the st\t1? we met at the\t2",
    "backspace-into-committed-words": "see you at the station \b\b\b\b\b\b\b\bpark tonight ?\b\b x!\b\b\bsoon . \b\b\bx",
    "emoji-and-unknown-words": "ok 👍🏽 see you 🇺🇸 at the zzyzx qwerty sta\t2 👨\u200d👩\u200d👧 x\u200dy!",
    "capitalisation-and-resets": "SEE YOU AT THE STA\t1\x1bI Think the Tr\t1\x1bdon’t be la\t1\x1bSee You. "
                                 "Ar\t1 i\t1",
    "tap-after-punctuation": "Hi.\t1\t1we met at the s\t3\b\b\bt\t1",
    "unicode-input": "été e\u0301t naïve Ⅻ ﬁne \u202eabc\u202c \u00a0\x00 שלום, مرحبا؟ x\u0323\u0302 İs\t1",
    "no-repeat-typing-forward": "see you at the stat\btion at the sp\bta",
    "deep-rewind-beyond-the-stack": "see you soon . " * 45 + "\b" * 640 + "at the\t1",
}
PARK = "we met at the park . we met at the park tonight . "
CACHE_TRACES = {  # cache weight/capacity, text it learns first, prime: the field opens with (text, learn it)
    "personal-cache": dict(weight=0.3, learned=PARK,
                           script="we met at the p\bpark . i think the train is late . we met at the \t1\b\b\b\b\b\b"
                                  "thepark zz\b\b\b\b\b\b\b\b\bsee"),
    # capacity 4: typed words evict pairs, backspacing into them brings the pairs back (as far as
    # the undo log reaches), then into the words the field opened with, which the cache learned
    "cache-evictions-undone": dict(weight=0.3, capacity=4, prime=(PARK, True),
                                   script="see you at the station . " + "\b" * 40 + "train is late"),
    # the field opens with text the cache does not learn, nor what is re-typed at its positions
    "primed-field-not-learned": dict(weight=0.3, capacity=4, learned="see you soon . ",
                                     prime=("we met at the park . i think ", False),
                                     script="the train is" + "\b" * 18 + "park tonight . see"),
    # a private (password) field: words the cache would learn, a tap, a backspace and a cursor
    # jump there step nothing, show nothing and learn nothing; RESET returns to a normal field
    "private-field-learns-nothing": dict(weight=0.3, capacity=16, learned=PARK,
                                         script="we met at the pa\t1\x10we met at the park tonight . "
                                                "the sta\t1\b\b\bx\x1a i think\x1bsee you at the pa\t1. i"),
}
REPEAT_TRACES = {"repeat-allowed": "see you at the s\tt\ta\t1"}
# A bundle whose manifest asks for another strip size (engine.strip_size, docs/engine.md §3):
# strips of that many words, taps past slot 3, no-repeat passing over all of them, completions.
STRIP_TRACES = {
    "strip-of-five": (5, "see you at the \t5i think the \t4we met at the p\t1. are you at th\bhe \t5\x1bsee you \t4"),
}


# Words outside the vocabulary (docs/engine.md §16-§17). \x0e+WORD\x0e adds a user word, \x0e-WORD\x0e removes
# (and blocks) it, \x0f restarts from the saved files (keyboard_lm.phone.traces).
LEXICON = [("Zanzibar", 40), ("zanzibari", 3), ("zebu", 7), ("Kiev", 12), ("quokka", 5), ("stationmaster", 9)]
# name -> (strip size, personal cache weight or None, user words on, script); on the toy bundle with LEXICON
LEXICON_TRACES = {
    # completions of a typed prefix in the word's own case or the typed one, all capitals, a tap,
    # a lexicon word typed in full (fed as <unk>, nothing learned without user words)
    "lexicon-completion": (3, None, False, "see you at z\t1i saw a Q\t1\x1bSEE YOU AT ZA\x1a\x1bsee you at k\t1. s\t3"
                                           "zebu zeb\x1bi saw a que\bo"),
    # the <unk> mass makes a lexicon word a next word (a strip of 10 reaches it on the toy model)
    "lexicon-next-word": (10, None, False, "see you at the z\bk\x1bthe train is late "),
    # a hyphenated prefix's free slots take compounds (§4.1): vocabulary and lexicon parts, the
    # typed case and all capitals, U+2010 typed as the hyphen, a tap, a compound typed in full
    "lexicon-compound": (3, None, False, "see you at the train-s\t1\x1bi saw a Park-z\x1bTRAIN-S\b\bpa\x1b"
                                         "the train\u2010s\t1i think x-ray-t\x1bsee the park-station \b\b\b"),
    # learned after 2 commits, offered from its first letter, tapped; backspace un-learns and the
    # retyped word learns again; a cursor jump (primed text), lexicon words and a private field
    # teach nothing; remove blocks, add brings it back; a restart from the saved file
    "user-words-learning": (3, 0.3, True, "see you Kasia \x1bi will call Kasia tomorrow \x1bsee you K\t1\x1bcall Bartek "
                                          "\x1bcall Bartek \b\b\bek \x1a\x1bKiev Kiev \x1bKiev \x10Secret Secret Secret "
                                          "\x1b\x0e-Kasia\x0esee you Kasia \x1bsee you Kasia \x1bsee you K\x0e+Kasia\x0e"
                                          "\x0e-Spam\x0e\x1bsee Zoë \x1bsee Zoë \x0f\x1bsee you K\t1see z"),
}
# on the toy bundle without a lexicon: the user's words take the whole <unk> mass (a next word
# on a strip of 10), removed after a restart, blocked, added back in another case
USER_WORD_TRACES = {
    "user-words-without-lexicon": (10, "see you at the Zoë \x1bsee you at the Zoë \x1bsee you at the z\bZO\x1a\x1bsee you "
                                       "at the \x0f\x0e-Zoë\x0e\x1bsee you at the Zoë \x1bsee you at the Zoë "
                                       "\x0e+zoë\x0e\x1bsee you at the "),
}


def _long_opening(length=4_300):
    """A field longer than twice the engine's window (keyboard_lm.phone.keyboard.CONTEXT_CHARS), with
    astral emoji so UTF-16 and code point offsets differ, and a stretch with no sentence end."""
    sentences = ["see you at the station tomorrow .", "i think the train 👍🏽 is late again !",
                 "we met at the park tonight", "are you at the station 🇺🇸 ?", "don't be late for the train ."]
    text, i = "", 0
    while len(text) < length:
        text += sentences[i % len(sentences)] + " "
        i += 1
    return text


# (the field opens with, learn it, cache weight and capacity or None, script); \x1a is a cursor
# jump (reset on the same text); 1,300 backspaces go deeper than the state stack, so the engine
# re-primes on the window of the shorter text (its base moves back)
LONG_TRACES = {
    "long-field-window": (_long_opening(), False, None,
                          "i will call you tomorrow . see you at the sta\t1" + "\b" * 30 + "park tonight !\x1a"
                          " we met at the s" + "\b" * 1300 + "at the\t1\x1a see"),
    "long-field-cache": (_long_opening(), False, (0.3, 8),
                         "we met at the park . " + "\b" * 1300 + "see you . i think\x1a the"),
}


def _tools():
    """javac/java and the two jars, or a clear failure (CI installs them; never skipped)."""
    missing = [f"{tool} (default-jdk-headless)" for tool in ("javac", "java") if shutil.which(tool) is None]
    missing += [f"{path} ({package})" for package, path in JARS.items() if not path.is_file()]
    if missing:
        pytest.fail("the Java core's tests need: " + ", ".join(missing) +
                    "; install with: apt-get install default-jdk-headless junit5 libandroid-json-java")


# Texts whose sentences (data_pipeline.tokenization.split_sentences, then tokenized) the Java port of
# the training loop must cut alike (AdapterTrainingTest, docs/engine.md §18.3)
SENTENCE_CASES = ["Hi there. How are you? ok", "wait...what", "ok\uff0efine", "3.5 miles. Then 4!", "Mr. Smith said hi !! really?",
                  "emoji \U0001f44d\U0001f3fd. done", "no end", "", "  \n ", "don\u2019t stop. \u00bfqu\u00e9? s\u00ed",
                  "a.b.c", "line one\nline two. three", "\u2026 ok \u3002 next"]


def _adapter_fixture():
    spec = importlib.util.spec_from_file_location("make_adapter_fixture", Path(__file__).with_name("make_adapter_fixture.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _make_fixtures():
    spec = importlib.util.spec_from_file_location("make_fixtures", CORE / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_unicode_tables_are_the_specs():
    copy = CORE / "src/main/resources/keyboardlm/core/unicode_tables.json"
    assert copy.read_bytes() == TABLES_PATH.read_bytes(), \
        f"{copy} differs from {TABLES_PATH}; run python android_demo/core/make_fixtures.py"


def test_the_java_loop_has_the_python_loops_defaults():
    """AdapterTraining.java's defaults are keyboard_lm/phone/adapter.py's (docs/engine.md §18.3):
    the phone and the harness train the same adapter from the same text."""
    import re

    from keyboard_lm.phone.adapter import AdaptOptions

    source = (CORE / "src/main/java/keyboardlm/core/AdapterTraining.java").read_text()

    def constant(name):
        found = re.search(rf"static final \w+ {name} = ([0-9.eE+-]+)f?;", source)
        assert found, f"AdapterTraining.java: no constant {name}"
        return float(found.group(1))

    defaults = AdaptOptions()
    assert constant("EPOCHS") == defaults.epochs
    assert constant("LEARNING_RATE") == defaults.learning_rate
    assert constant("L2") == defaults.l2
    assert constant("HELD_OUT") == defaults.held_out
    assert constant("SEED") == defaults.seed
    assert constant("MAX_FORGETTING") == defaults.max_forgetting


def test_fixtures_are_current():
    """The tokenizer fixture and the NFKC data are what the Python twin gives now."""
    import unicodedata

    if unicodedata.unidata_version != "14.0.0":
        pytest.skip("the fixtures were derived from Unicode 14.0 (Python 3.11)")
    stale = _make_fixtures().stale()
    assert not stale, f"stale: {stale}; run python android_demo/core/make_fixtures.py and commit"


@pytest.fixture(scope="module")
def traces(toy_bundle, tmp_path_factory):
    """Golden traces of the Python engine on the toy bundle, and a copy of the bundle."""
    from keyboard_lm.phone.bundle import load_bundle
    from keyboard_lm.phone.keyboard import KeyboardEngine
    from keyboard_lm.phone.personal_cache import DEFAULT_CAPACITY, PersonalCache
    from keyboard_lm.phone.traces import record, write_traces
    from keyboard_lm.phone.user_words import UserWords

    out = tmp_path_factory.mktemp("android")
    bundle = load_bundle(toy_bundle)
    recorded = [record(KeyboardEngine(bundle), script, name) for name, script in TRACES.items()]
    recorded += [record(KeyboardEngine(bundle, no_repeat=False), script, name) for name, script in REPEAT_TRACES.items()]
    for name, spec in CACHE_TRACES.items():
        cache = PersonalCache(len(bundle.vocab), spec["weight"], spec.get("capacity", DEFAULT_CAPACITY))
        engine = KeyboardEngine(bundle, cache=cache)
        engine.reset(spec.get("learned", ""), learn=True)
        recorded.append(record(engine, spec["script"], name, spec.get("prime")))
    for name, (opening, learn, cache_spec, script) in LONG_TRACES.items():
        cache = PersonalCache(len(bundle.vocab), *cache_spec) if cache_spec else None
        recorded.append(record(KeyboardEngine(bundle, cache=cache), script, name, (opening, learn)))
    for name, (size, script) in STRIP_TRACES.items():  # the engine takes the strip size from the manifest
        sized = out / f"bundle-strip-{size}"
        shutil.copytree(toy_bundle, sized)
        manifest = json.loads((sized / "manifest.json").read_text())
        manifest["engine"] = {**manifest.get("engine", {}), "strip_size": size}
        (sized / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        trace = record(KeyboardEngine(load_bundle(sized)), script, name)
        assert trace["engine"]["strip_size"] == size and any(len(k["strip"]) == size for k in trace["keystrokes"])
        recorded.append(trace)
    for name, (size, script) in USER_WORD_TRACES.items():
        (out / name).mkdir()
        engine = KeyboardEngine(bundle, strip_size=size, user_words=UserWords())
        recorded.append(record(engine, script, name, save_to=out / name))
    write_traces(out / "traces.json", recorded, bundle.manifest)
    shutil.copytree(toy_bundle, out / "bundle")
    # §18: an adapter file numpy writes for the bundle (AdapterTest, AdapterTrainingTest read out/adapter)
    _adapter_fixture().write_fixture(out / "bundle", out / "adapter")
    from data_pipeline.tokenization import split_sentences, tokenize
    (out / "adapter" / "sentences.json").write_text(json.dumps(
        {text: [tokenize(s) for s in split_sentences(text) if tokenize(s)] for text in SENTENCE_CASES}))
    return out


@pytest.fixture(scope="module")
def lexicon_traces(toy_bundle, tmp_path_factory):
    """The toy bundle with a lexicon of words outside its vocabulary (export.lexicon.add_to_bundle,
    as kblm export writes it), and golden traces of the Python engine on it (§16-§17)."""
    from export.lexicon import add_to_bundle
    from keyboard_lm.phone.bundle import load_bundle
    from keyboard_lm.phone.keyboard import KeyboardEngine
    from keyboard_lm.phone.personal_cache import PersonalCache
    from keyboard_lm.phone.traces import record, write_traces
    from keyboard_lm.phone.user_words import UserWords

    out = tmp_path_factory.mktemp("android-lexicon")
    shutil.copytree(toy_bundle, out / "bundle")
    add_to_bundle(out / "bundle", LEXICON)
    bundle = load_bundle(out / "bundle")
    recorded = []
    for name, (size, weight, user_words, script) in LEXICON_TRACES.items():
        (out / name).mkdir()
        cache = PersonalCache(len(bundle.vocab), weight) if weight else None
        engine = KeyboardEngine(bundle, strip_size=size, cache=cache, user_words=UserWords() if user_words else None)
        recorded.append(record(engine, script, name, save_to=out / name))
    write_traces(out / "traces.json", recorded, bundle.manifest)
    return out


# Replayed from a bundle of another cell kind (CIFG + projection: h and c differ in size)
CIFG_TRACES = {name: TRACES[name] for name in list(TRACES)[:2]}


@pytest.fixture(scope="module")
def cifg_traces(toy_run, tmp_path_factory):
    """A CIFG model trained on the toy run's text, exported in dynamic_int8, and golden traces
    of the Python engine on it (one with a personal cache)."""
    from export.exporter import export_run
    from keyboard_lm.phone.bundle import load_bundle
    from keyboard_lm.phone.keyboard import KeyboardEngine
    from keyboard_lm.phone.personal_cache import PersonalCache
    from keyboard_lm.phone.traces import record, write_traces
    from keyboard_lm.training.train import train

    out = tmp_path_factory.mktemp("android-cifg")
    train(out / "run", str(toy_run.parent / "messages.txt"), "tiny",
          {"cell": "cifg", "embedding_dim": 16, "rnn_units": [40], "cell_options": {"projection": 12}},
          {"epochs": 2, "learning_rate": 1e-2, "pipeline": {"batch_size": 16, "sequence_length": 10}},
          progress=False)
    export_run(out / "run", "dynamic_int8", out / "bundle", sample_messages=50)
    bundle = load_bundle(out / "bundle")
    assert [size for _, size in bundle.state_layout] == [12, 40]
    recorded = [record(KeyboardEngine(bundle), script, name) for name, script in CIFG_TRACES.items()]
    cache = PersonalCache(len(bundle.vocab), 0.3)
    recorded.append(record(KeyboardEngine(bundle, cache=cache), "we met at the park . we met at the p\t1", "cifg-cache"))
    write_traces(out / "traces.json", recorded, bundle.manifest)
    return out


def test_lexicon_traces_show_what_they_cover(traces, lexicon_traces):
    """The user-word and lexicon traces reach what they are named for (a thin trace would pass silently)."""
    recorded = {t["name"]: t for name in (traces, lexicon_traces)
                for t in json.loads((name / "traces.json").read_text())["traces"]}
    strips = {name: [k["strip"] for k in t["keystrokes"]] for name, t in recorded.items()}
    assert ["Zanzibar", "zebu", "zanzibari"] in strips["lexicon-completion"] and ["ZANZIBAR", "ZANZIBARI"] in \
        strips["lexicon-completion"]
    assert ["Quokka"] in strips["lexicon-completion"] and any(k["key"] == "TAP3" and k["text"].endswith(". stationmaster ")
                                                              for k in recorded["lexicon-completion"]["keystrokes"])
    assert any(k["prefix"] == "" and "Zanzibar" in k["strip"] for k in recorded["lexicon-next-word"]["keystrokes"])
    compound = recorded["lexicon-compound"]["keystrokes"]
    assert ["train-station", "train-soon", "train-stationmaster"] in strips["lexicon-compound"]
    assert ["Park-Zanzibar", "Park-zebu", "Park-zanzibari"] in strips["lexicon-compound"]
    assert ["TRAIN-SEE", "TRAIN-STATION", "TRAIN-SOON"] in strips["lexicon-compound"]
    assert [k["text"] for k in compound if k["key"] == "TAP1"] == ["see you at the train-station ",
                                                                   "the train\u2010station "]
    assert ["park-station", "park-stationmaster"] in strips["lexicon-compound"]  # backspaced into
    learning = recorded["user-words-learning"]["keystrokes"]
    learned = [[w for w, _ in k["learned"]] for k in learning]
    assert learned[0] == [] and ["Kasia"] in learned and ["Kasia", "Bartek"] in learned
    dropped = [i for i in range(1, len(learned)) if len(learned[i]) < len(learned[i - 1])]
    assert any(learning[i]["key"] == "BACKSPACE" for i in dropped), "a backspace un-learns a word"
    assert any(learning[i]["key"] == "REMOVE:Kasia" and learning[i]["removed"] for i in dropped)
    assert all("Kiev" not in words and "Secret" not in words for words in learned)
    restart = next(k for k in learning if k["key"] == "RESTART")
    assert '"blocked": ["spam"]' in restart["saved"] and "Zoë" in restart["saved"]
    assert any(k["key"] == "ADD:Kasia" and "Kasia" in k["strip"] for k in learning)
    assert any(k["prefix"] == "" and "Zoë" in k["strip"] for k in recorded["user-words-without-lexicon"]["keystrokes"])
    assert ["ZOË"] in strips["user-words-without-lexicon"]
    assert recorded["user-words-without-lexicon"]["user_words_after"]["words"] == [["zoë", 2]]


def test_java_core(traces, cifg_traces, lexicon_traces):
    """compile core/ + tests with javac, run JUnit 5: tokenizer parity, loader, engine replay."""
    _tools()
    env = dict(os.environ, KBLM_TRACES=str(traces / "traces.json"), KBLM_BUNDLE=str(traces / "bundle"),
               KBLM_CIFG_TRACES=str(cifg_traces / "traces.json"), KBLM_CIFG_BUNDLE=str(cifg_traces / "bundle"),
               KBLM_LEXICON_TRACES=str(lexicon_traces / "traces.json"), KBLM_LEXICON_BUNDLE=str(lexicon_traces / "bundle"))
    result = subprocess.run([str(CORE / "run-tests.sh"), "--details=summary", "--disable-ansi-colors"],
                            env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"Java core tests failed (exit {result.returncode}):\n{output[-12000:]}", pytrace=False)
    assert " 0 tests failed" in output and " 0 tests found" not in output, output
    # either port reads the other's adapter file: the one AdapterTest wrote, read with numpy
    import numpy as np

    expected = json.loads((traces / "adapter" / "expected.json").read_text())
    _, arrays = _adapter_fixture().read_kbad((traces / "adapter" / "written-by-java.kbad").read_bytes())
    for name, array in zip(("adapter_bias", "adapter_down", "adapter_up"), arrays):
        assert np.array_equal(array.reshape(-1), np.array(expected[name], np.float32)), name
    # and the harness's own loader (every check of §18.4) takes Java's file for this bundle
    from keyboard_lm.phone.adapter import load_adapter
    from keyboard_lm.phone.bundle import load_bundle

    loaded, _ = load_adapter(traces / "adapter" / "written-by-java.kbad", load_bundle(traces / "adapter" / "bundle"))
    for name, array in zip(("adapter_bias", "adapter_down", "adapter_up"), arrays):
        assert np.array_equal(loaded[name], array.reshape(loaded[name].shape)), name
    # the general sample the Java tests read (bundle-general, §18.3) is one the harness's loader takes, as the same messages
    general = load_bundle(traces / "adapter" / "bundle-general").general_messages
    assert general == expected["general_messages"] and load_bundle(traces / "adapter" / "bundle").general_messages is None


def test_copy_bundle_script(toy_bundle, tmp_path):
    """copy_bundle.sh puts a bundle (directory or .zip) where the app reads it."""
    from export.bundle import write_zip

    target = tmp_path / "assets" / "bundle"
    subprocess.run([str(DEMO / "copy_bundle.sh"), str(toy_bundle), str(target)], check=True, capture_output=True)
    # the required files, and the optional ones the bundle has (lexicon, the adapter's general sample):
    # the app's loader verifies every file the manifest lists
    optional = [n for n in ("adapter-general.txt", "lexicon.tsv.gz") if (toy_bundle / n).exists()]
    assert "adapter-general.txt" in optional, "kblm export writes a general sample by default"
    names = sorted(["manifest.json", "model.tflite", "vocab.json", "vocab.txt", *optional])
    assert sorted(p.name for p in target.iterdir()) == names
    assert all((target / n).read_bytes() == (toy_bundle / n).read_bytes() for n in names)
    write_zip(toy_bundle, tmp_path / "b.zip")
    (target / "stale.txt").write_text("from an older bundle")
    subprocess.run([str(DEMO / "copy_bundle.sh"), str(tmp_path / "b.zip"), str(target)], check=True, capture_output=True)
    assert sorted(p.name for p in target.iterdir()) == names
    assert all((target / n).read_bytes() == (toy_bundle / n).read_bytes() for n in names)
    # a bundle without them: none left behind from the one before
    plain = tmp_path / "plain"
    shutil.copytree(toy_bundle, plain)
    for name in optional:
        (plain / name).unlink()
    subprocess.run([str(DEMO / "copy_bundle.sh"), str(plain), str(target)], check=True, capture_output=True)
    assert sorted(p.name for p in target.iterdir()) == ["manifest.json", "model.tflite", "vocab.json", "vocab.txt"]
    bad = subprocess.run([str(DEMO / "copy_bundle.sh"), str(tmp_path / "nothing"), str(target)], capture_output=True, text=True)
    assert bad.returncode != 0 and "nothing" in bad.stderr
