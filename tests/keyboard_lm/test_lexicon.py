"""Words outside the vocabulary (issue 18, docs/engine.md §16-§17): the bundle's lexicon
(completion of a typed prefix, next words by the <unk> rule, casing, the prefix index's
speed), the words the user teaches it (learned after N commits, never from backspaced text
or private fields, removed and blocked, saved beside the cache, a corrupt file kept
aside), ``kblm words`` and ``kblm simulate``'s reachable words. Real training, real LiteRT
(the session's toy bundle, with a lexicon written into a copy)."""
import json
import shutil

import numpy as np
import pytest

from data_pipeline.errors import KblmError
from data_pipeline.vocab import UNK_ID
from export.lexicon import add_to_bundle, build_lexicon
from keyboard_lm.cli import main
from keyboard_lm.phone.bundle import load_bundle
from keyboard_lm.phone.keyboard import USER_SHARE, KeyboardEngine
from keyboard_lm.phone.lexicon import FILE, Lexicon, learnable
from keyboard_lm.phone.personal_cache import PersonalCache
from keyboard_lm.harness.simulator import EnginePredictor, simulate
from keyboard_lm.phone.user_words import UserWords, load_or_start, words_path

LEXICON = [("Zanzibar", 40), ("zanzibari", 3), ("zebu", 7), ("Kiev", 12), ("quokka", 5), ("stationmaster", 9)]


@pytest.fixture(scope="module")
def lexicon_bundle(toy_bundle, tmp_path_factory):
    directory = tmp_path_factory.mktemp("lexicon") / "bundle"
    shutil.copytree(toy_bundle, directory)
    add_to_bundle(directory, LEXICON)
    return directory


@pytest.fixture(scope="module")
def loaded(lexicon_bundle):
    return load_bundle(lexicon_bundle)


def test_the_lexicon_loads_as_a_prefix_index(loaded):
    lexicon = loaded.lexicon
    assert len(lexicon) == 6 and lexicon.total == 76
    assert list(lexicon.keys) == sorted(lexicon.keys) and lexicon.words[lexicon.keys.index("kiev")] == "Kiev"
    lo, hi = lexicon.range("zan")
    assert [lexicon.words[i] for i in range(lo, hi)] == ["Zanzibar", "zanzibari"]
    assert [lexicon.words[i] for i in lexicon.by_count] == ["Zanzibar", "Kiev", "stationmaster", "zebu",
                                                            "quokka", "zanzibari"]


def test_a_prefix_completes_to_lexicon_words_in_their_case(loaded):
    engine = KeyboardEngine(loaded)
    engine.set_text("see you at zan")
    assert engine.strip() == ["Zanzibar", "zanzibari"]  # the capitalised name keeps its form
    engine.reset("see you at ZAN")
    assert engine.strip()[0] == "ZANZIBAR"
    engine.reset("i saw a Que")  # no: nothing starts with "que"
    assert engine.strip() == []
    engine.reset("i saw a Quo")
    assert engine.strip() == ["Quokka"]  # the typed prefix's case, as for vocabulary words (§5)
    engine.reset("see you at the sta")
    strip = engine.strip()
    assert strip[0] == "station" and "stationmaster" not in strip[:1]
    assert engine.tap(0) == "station"


def test_a_hyphenated_prefix_completes_its_last_part(toy_bundle, loaded):
    """§4.1: after a hyphen the free slots take head + completions of the part being typed."""
    engine = KeyboardEngine(loaded)
    engine.set_text("see you at the park-st")
    assert engine.strip() == ["park-station", "park-stationmaster"]  # a vocabulary part, then a lexicon one
    engine.reset("see you at the Park-z")
    assert engine.strip()[0] == "Park-Zanzibar"  # the part's own case, the typed head kept
    engine.reset("see you at the PARK-ST")
    assert engine.strip() == ["PARK-STATION", "PARK-STATIONMASTER"]  # all capitals typed
    engine.reset("see you at the park\u2010st")
    assert engine.tap(engine.strip().index("park\u2010station")) == "park\u2010station"
    assert engine.text == "see you at the park\u2010station "
    for text in ("see you at the park-", "see you at the park-qq", "see you at the park--st"):
        engine.reset(text)
        assert not any("-" in word for word in engine.strip()), text
    plain = KeyboardEngine(load_bundle(toy_bundle))
    plain.set_text("see you at the park-st")
    assert plain.strip() == ["park-station"]  # vocabulary parts without a lexicon
    assert plain.reachable("park-station") and plain.reachable("x-ray") is False
    assert engine.reachable("train-zanzibar") and not engine.reachable("train-") and not engine.reachable("qq-train")


def test_lexicon_words_share_the_unk_probability_by_count(loaded):
    """§16 exactly: score = log p(<unk>) + log(c / C); merged with the vocabulary's scores,
    ties by id (the lexicon's after the vocabulary's, in count order)."""
    engine = KeyboardEngine(loaded, strip_size=10)
    engine.set_text("see you at the ")
    unk = float(engine.scores()[UNK_ID])
    ids, scores, words = engine._extra_candidates(None, 40)
    expected = {w: unk + np.log(c / 76) for w, c in LEXICON}
    assert {words[i]: s for i, s in zip(ids.tolist(), scores)} == pytest.approx(expected)
    ranking = [(-s, i, w) for w, s in expected.items() for i in [0]]
    vocab = [(-float(engine.scores()[i]), i, engine.vocab.tokens[i]) for i in np.flatnonzero(engine.suggestible)]
    best = [w for _, _, w in sorted(vocab + ranking, key=lambda r: (r[0], r[1] if r[1] else 10**9))[:10]]
    assert engine.strip() == [w for w in best]
    # a word likely enough is a next word: with one lexicon word, it takes the whole <unk> mass
    assert all(score <= unk + 1e-9 for score in scores)


def test_no_lexicon_no_user_words_is_the_old_engine(toy_bundle, loaded):
    plain = KeyboardEngine(load_bundle(toy_bundle))
    assert plain.lexicon is None and plain._extra_candidates(None, 12)[0].size == 0
    for text in ("see you at the ", "see you at the sta", "zan", ""):
        plain.reset(text)
        assert "Zanzibar" not in plain.strip()


def type_field(engine, text):
    engine.reset()
    for ch in text:
        engine.type(ch)
    engine.strip()


def teaching_engine(bundle, words=None):
    return KeyboardEngine(bundle, cache=PersonalCache(len(bundle.vocab), 0.1), user_words=words or UserWords())


@pytest.mark.parametrize("with_lexicon", [False, True], ids=["no lexicon", "lexicon"])
def test_a_name_typed_twice_is_offered_from_its_first_letters_the_third_time(with_lexicon, toy_bundle, loaded):
    bundle = loaded if with_lexicon else load_bundle(toy_bundle)
    engine = teaching_engine(bundle)
    type_field(engine, "see you at the station Kasia ")
    engine.reset("see you Ka")
    assert "Kasia" not in engine.strip()  # once is not enough (N = 2)
    type_field(engine, "i will call Kasia tomorrow ")
    assert engine.user_words.words() == [("Kasia", 2)]
    engine.reset("")
    for ch in "see you K":
        engine.type(ch)
    assert engine.strip()[0] == "Kasia"  # from its first letter on
    engine.type("a")
    assert "Kasia" not in engine.strip()  # shown and passed over: not re-offered for this word (§6)
    engine.reset("see you Ka")
    assert engine.strip()[0] == "Kasia"
    engine.reset("see you ka")
    assert engine.strip()[0] == "Kasia"  # a word written with a capital keeps it (§16)
    assert engine.reachable("Kasia") and engine.reachable("kasia")


def test_backspaced_words_do_not_count(loaded):
    engine = teaching_engine(loaded)
    type_field(engine, "see you Kasia ")
    for _ in range(3):
        engine.backspace()  # into "Kasia": the commit is taken back
    assert engine.user_words.counts == {}
    for ch in "ib ":
        engine.type(ch)
    assert engine.text == "see you Kasib " and engine.user_words.counts == {"kasib": 1}
    engine.backspace()
    engine.backspace()
    engine.type("a")
    engine.type(" ")
    assert engine.user_words.counts == {"kasia": 1}  # the other unknown word at the same place
    type_field(engine, "see you Kasia ")
    assert engine.user_words.words() == [("Kasia", 2)]


def test_private_fields_and_primed_text_never_teach(loaded):
    engine = teaching_engine(loaded)
    for _ in range(3):
        engine.reset("", private=True)
        for ch in "my Kasia password ":
            engine.type(ch)
        engine.reset("Kasia Kasia Kasia ")  # an opening text is not learned (§10)
    assert engine.user_words.counts == {}


@pytest.mark.parametrize("word", ["x" * 65, "1234567", "12.5", "ab\u200bcd", "ab\x07cd", ""])
def test_words_that_are_never_learned(word, loaded):
    assert not learnable(word)
    words = UserWords()
    for _ in range(3):
        words.commit("<bos>", word)
    assert words.words() == []
    with pytest.raises(KblmError, match="not a word the keyboard can learn"):
        words.add(word)
    assert learnable("x" * 64) and learnable("R2D2") and learnable("Zoë")


def test_an_engine_ignores_numbers_and_long_words(loaded):
    engine = teaching_engine(loaded)
    for _ in range(3):
        type_field(engine, "call 55512345 at " + "y" * 70 + " ")
    assert engine.user_words.counts == {}


def test_lexicon_words_are_not_learned_and_removed_words_are_blocked(loaded):
    engine = teaching_engine(loaded)
    for _ in range(2):
        type_field(engine, "see you at Kiev ")  # a lexicon word: offered already, not learned
    assert engine.user_words.counts == {}
    for _ in range(2):
        type_field(engine, "see you Kasia ")
    assert engine.user_words.remove("Kasia") is True
    for _ in range(3):
        type_field(engine, "see you Kasia ")
    assert engine.user_words.words() == []
    engine.reset("see you Ka")
    assert "Kasia" not in engine.strip()
    engine.user_words.add("Kasia")
    engine.reset("see you Ka")
    assert engine.strip()[0] == "Kasia"
    for _ in range(2):
        type_field(engine, "see you Kasia ")
    assert engine.user_words.words() == [("Kasia", 4)]


def test_user_word_probability_follows_the_rule(loaded):
    """§16: with a lexicon, user words take USER_SHARE of the <unk> mass, by the cache's
    bigram-backed-off-to-unigram estimate over the learned words."""
    words = UserWords()
    for prev, word in [("you", "Kasia"), ("you", "Kasia"), ("call", "Bartek"), ("call", "Bartek"),
                       ("call", "Bartek")]:
        words.commit(prev, word)
    engine = KeyboardEngine(loaded, user_words=words, strip_size=10)
    engine.set_text("see you ")
    unk = float(engine.scores()[UNK_ID])
    ids, scores, names = engine._extra_candidates(None, 40)
    got = {names[i]: s for i, s in zip(ids.tolist(), scores)}
    # after "you": b(you, Kasia) = 2, b(you, ·) = 2, n = (Bartek 3, Kasia 2), N = 5
    assert got["Kasia"] == pytest.approx(unk + np.log(USER_SHARE * (2 + 2 / 5) / 3))
    assert got["Bartek"] == pytest.approx(unk + np.log(USER_SHARE * (0 + 3 / 5) / 3))
    assert got["Zanzibar"] == pytest.approx(unk + np.log((1 - USER_SHARE) * 40 / 76))


def test_user_words_persist_and_a_corrupt_file_is_kept_aside(loaded, tmp_path):
    engine = teaching_engine(loaded)
    for _ in range(2):
        type_field(engine, "see you Kasia ")
    engine.user_words.remove("Spam")
    path = words_path(tmp_path / "cache.json")
    assert path.name == "cache.words.json"
    engine.user_words.save(path)
    again = UserWords.load(path)
    assert again.words() == [("Kasia", 2)] and again.blocked == {"spam"} and again.pairs["you"]["kasia"] == 2
    path.write_text('{"format_version": 1, "words": [["Kasia", "two"]]}')
    said = []
    words = load_or_start(path, warn=said.append)
    assert words.words() == [] and len(said) == 1 and "field words[0]" in said[0]
    assert not path.exists() and (tmp_path / "cache.words.json.bad").read_text().startswith('{"format_version"')
    path.write_text("{not json")
    load_or_start(path, warn=said.append)
    assert (tmp_path / "cache.words.json.bad.1").exists() and len(said) == 2


def test_kblm_words_list_add_remove(tmp_path, capsys):
    cache = tmp_path / "cache.json"
    assert main(["words", "add", "Kasia", "--cache", str(cache)]) == 0
    assert main(["words", "add", "Bartek", "--cache", str(cache)]) == 0
    assert main(["words", "remove", "Bartek", "--cache", str(cache)]) == 0
    capsys.readouterr()
    assert main(["words", "list", "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "1 learned word, 1 blocked" in out and "Kasia" in out and "bartek  (blocked)" in out
    assert main(["words", "add", "1234", "--cache", str(cache)]) == 1
    assert "not a word the keyboard can learn" in capsys.readouterr().err
    words_path(cache).write_text("[]")
    assert main(["words", "add", "Zoë", "--cache", str(cache)]) == 0
    err = capsys.readouterr().err
    assert err.count("kblm: warning:") == 1 and "starting with no learned words" in err
    assert UserWords.load(words_path(cache)).words() == [("Zoë", 2)]


def test_simulate_learns_with_a_cache_and_saves_the_words(lexicon_bundle, tmp_path, capsys):
    text = tmp_path / "messages.txt"
    text.write_text("see you Kasia soon\nsee you Kasia soon\nsee you Kasia at the station\n")
    assert main(["simulate", str(lexicon_bundle), "--text", str(text), "--cache-weight", "0.1",
                 "--cache-save", str(tmp_path / "cache.json")]) == 0
    out = capsys.readouterr().out
    assert "reachable words" in out
    assert UserWords.load(tmp_path / "cache.words.json").words() == [("Kasia", 3)]
    capsys.readouterr()
    assert main(["suggest", str(lexicon_bundle), "hi Ka", "--cache", str(tmp_path / "cache.json")]) == 0
    assert "[1] Kasia" in capsys.readouterr().out


def test_reachable_words_in_the_simulator(toy_bundle, loaded):
    messages = ["see you at Zanzibar", "the quokka is late"]
    with_lexicon = simulate(EnginePredictor(KeyboardEngine(loaded)), messages, progress=False)
    without = simulate(EnginePredictor(KeyboardEngine(load_bundle(toy_bundle))), messages, progress=False)
    assert with_lexicon["reachable"] == 1.0 and without["reachable"] == pytest.approx(6 / 8)
    assert with_lexicon["ksr"] > without["ksr"]


def test_build_lexicon_keeps_the_most_frequent_case(toy_vocab):
    messages = ["Kasia met kasia and Kasia in Zanzibar", "zanzibar", "see you Zanzibar 1999"]
    entries = build_lexicon(messages, toy_vocab)
    assert entries == [("1999", 1), ("and", 1), ("in", 1), ("Kasia", 3), ("met", 1), ("Zanzibar", 3)] or \
        dict(entries)["Kasia"] == 3
    assert dict(entries)["Zanzibar"] == 3 and "see" not in dict(entries) and "you" not in dict(entries)
    assert [e[0].lower() for e in entries] == sorted(e[0].lower() for e in entries)
    assert build_lexicon(messages, toy_vocab, "none") == []
    with pytest.raises(KblmError, match="--lexicon: expected"):
        build_lexicon(messages, toy_vocab, "wordfreq")


def test_a_100k_lexicon_is_compact_and_completes_from_its_words(toy_bundle, tmp_path):
    """100,000 words fit the issue's 1 MB and are offered from their prefixes (their cost per
    keystroke and at load is a benchmark's: benchmarks/lexicon_cost.py)."""
    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = set()
    while len(words) < 100_000:
        words.add("".join(rng.choice(letters, rng.integers(4, 12))) + "q")  # no toy vocabulary word ends in q
    counts = (1e6 / np.arange(1, 100_001)).astype(int) + 1  # Zipf-like
    directory = tmp_path / "big"
    shutil.copytree(toy_bundle, directory)
    entries = list(zip(sorted(words), counts.tolist()))
    add_to_bundle(directory, entries)
    assert (directory / FILE).stat().st_size <= 1_000_000
    engine = KeyboardEngine(load_bundle(directory))
    best = max(entries, key=lambda entry: entry[1])[0]
    for ch in best[:4]:
        engine.type(ch)
    assert best in engine.strip()
