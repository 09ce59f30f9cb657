"""The Presage baseline on the real engine (Debian's libpresage + text2ngram), no mocks."""
import ctypes
import hashlib
import os
import shutil
import sqlite3
import time

import pytest

from data_pipeline.errors import KblmError
from keyboard_lm.harness import presage
from keyboard_lm.harness.presage import PresagePredictor, train_ngram_database


def _presage_missing():
    try:
        presage.load_library()
    except KblmError as error:
        return str(error)
    return None if shutil.which("text2ngram") else "text2ngram not found"


MISSING = _presage_missing()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"Presage not installed: {MISSING}")

SENTENCES = [
    "see you at the station",
    "I will see you at the station tomorrow",
    "we start the game at noon",
    "the train is late again",
    "she bought a new phone",
    "don't be late, it's well-known that the train leaves at 3.15!",
    "ok 👍🏽 a coffee at the café",
    "let's start early",
]
CORPUS = [SENTENCES[i % len(SENTENCES)] for i in range(200)]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return train_ngram_database(CORPUS, tmp_path_factory.mktemp("presage") / "toy.db")


@pytest.fixture
def predictor(db):
    # one per test: with REPEAT_SUGGESTIONS off, Presage remembers what it offered
    with PresagePredictor(db) as p:
        yield p


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_training_writes_only_the_db_with_all_orders(tmp_path):
    db = train_ngram_database(CORPUS, tmp_path / "out" / "ngrams.db", order=3)
    assert sorted(os.listdir(tmp_path / "out")) == ["ngrams.db"]  # no temp file left
    with sqlite3.connect(db) as connection:
        tables = {n for (n,) in connection.execute("SELECT name FROM sqlite_master")}
        assert {"_1_gram", "_2_gram", "_3_gram"} <= tables
        assert connection.execute("SELECT count FROM _3_gram WHERE word_2 = 'at' "
                                  "AND word_1 = 'the' AND word = 'station'").fetchone()[0] == 50
        assert connection.execute("SELECT COUNT(*) FROM _1_gram WHERE word = ''").fetchone()[0] == 0
    assert presage.database_order(db) == 3


def test_next_word_is_the_one_that_always_followed(predictor):
    words = predictor.suggestions("see you at the ")
    assert words[0] == "station" and len(words) == 3


def test_prefix_is_completed(predictor):
    assert predictor.suggestions("Let's meet, see you at the sta")[0] == "station"


def test_lists_are_short_unique_and_lowercase(predictor):
    for context in ["", "see ", "I will see you ", "the ", "the train ", "s", "we start the g"]:
        words = predictor.suggestions(context)
        assert len(words) <= 3 and len(set(words)) == len(words), (context, words)
        assert all(isinstance(w, str) and w and w == w.lower() for w in words), (context, words)


@pytest.mark.parametrize("context", ["", "ok 👍🏽 ", "👍🏽", "see you at the caf", "naïve ça ", "\x00",
                                     "lone \ud800 surrogate ", "字" * 5000, " \n\t "])
def test_odd_context_does_not_crash(predictor, context):
    words = predictor.suggestions(context)
    assert isinstance(words, list) and len(words) <= 3
    assert all(isinstance(w, str) and w for w in words)


def test_non_ascii_word_is_predicted(predictor):
    assert predictor.suggestions("ok 👍🏽 coffee at the caf") == ["café"]


def test_repeat_suggestions(db):
    with PresagePredictor(db) as stateful:
        assert stateful.suggestions("see you at the ")[0] == "station"
        assert "station" not in stateful.suggestions("see you at the ")
    with PresagePredictor(db, repeat_suggestions=True) as stateless:
        first = stateless.suggestions("see you at the ")
        assert stateless.suggestions("see you at the ") == first


def test_settings_and_suggestion_count(db):
    with PresagePredictor(db, suggestions=1, order=2) as p:
        assert p.settings["Presage.PredictorRegistry.PREDICTORS"] == presage.PREDICTOR
        assert p.settings[f"Presage.Predictors.{presage.PREDICTOR}.DELTAS"] == "0.1 0.9"
        assert p.suggestions("she bought a new ") == ["phone"]
    assert presage.deltas(3) == "0.01 0.1 0.89"


def test_evaluation_neither_learns_nor_touches_home(db, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    before = _sha256(db)
    with PresagePredictor(db) as p:
        for context in ["zebra crossing ", "zebra crossing zebra crossing ", "zebra "]:
            p.suggestions(context)
        assert "crossing" not in p.suggestions("zebra ")
    assert _sha256(db) == before
    assert os.listdir(tmp_path) == []  # presage_new would create ~/.presage/lm.db


def test_closed_predictor_and_bad_databases(db, tmp_path):
    p = PresagePredictor(db)
    p.close()
    p.close()
    with pytest.raises(KblmError, match="closed"):
        p.suggestions("see ")
    with pytest.raises(KblmError, match="no such Presage database"):
        PresagePredictor(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()
    (tmp_path / "junk.db").write_text("not sqlite")
    with pytest.raises(KblmError, match="not a Presage sqlite database"):
        PresagePredictor(tmp_path / "junk.db")
    with pytest.raises(KblmError, match="order 4 needs tables up to _4_gram"):
        PresagePredictor(db, order=4)


def test_training_errors(tmp_path, monkeypatch):
    with pytest.raises(KblmError, match="no text"):
        train_ngram_database(["", "  "], tmp_path / "empty.db")
    with pytest.raises(KblmError, match="order 0"):
        train_ngram_database(CORPUS, tmp_path / "zero.db", order=0)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KblmError, match="apt-get install presage"):
        train_ngram_database(CORPUS, tmp_path / "nope.db")
    assert os.listdir(tmp_path) == []


def test_reference_is_documented():
    assert "KSR 40.3%" in presage.PRESAGE_REFERENCE and "Brown" in presage.PRESAGE_REFERENCE
    assert isinstance(presage.load_library(), ctypes.CDLL)


@pytest.mark.corpus
def test_brown_train_gives_sensible_words(brown, tmp_path):
    # the first 5,000 sentences: all 35k take ~22 s of text2ngram on 2 busy cores
    start = time.perf_counter()
    db = train_ngram_database(brown.splits["train"][:5000], tmp_path / "brown.db")
    assert time.perf_counter() - start < 60
    with PresagePredictor(db) as p:
        words = p.suggestions("The ")
        assert len(words) == 3 and all(w.isalpha() and w.islower() for w in words), words
        assert "first" in words, words
        assert "of" in p.suggestions("The jury said that the members ")
