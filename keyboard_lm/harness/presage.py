"""Presage baseline: next-word suggestions from Debian's n-gram engine, through its C API.

In: training messages (one sentence each) -> a Presage sqlite n-gram database, built
by ``text2ngram``; that database plus the text before the cursor -> up to 3 words.
The simulator compares these with our LSTM keyboard on the same text. Standard
library only (ctypes on Presage's C API), no TensorFlow. Needs the Debian package
``presage`` (text2ngram; it pulls in libpresage1v5 with libpresage.so.1).
"""
import contextlib
import ctypes
import functools
import os
import shutil
import sqlite3
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from data_pipeline.errors import KblmError

PRESAGE_REFERENCE = (
    "Presage's own simulator (3 suggestions, trigram trained on Brown train, learning off) "
    "reports KSR 40.3% on the first 300 sentences of the Brown test split")
INSTALL_HINT = "apt-get install presage"
LIBRARY_NAMES = ("libpresage.so.1", "libpresage.so")
PREDICTOR = "DefaultSmoothedNgramPredictor"  # section name as in /etc/presage.xml
MAX_ORDER = 6
# presage_error_code_t from presageException.h, in order, for readable errors
ERROR_NAMES = ("OK", "ERROR", "TOKEN_PREFIX_MISMATCH_ERROR", "SMOOTHED_NGRAM_PREDICTOR_LEARN_ERROR",
               "CONFIG_VARIABLE_ERROR", "INVALID_CALLBACK_ERROR", "INVALID_SUGGESTION_ERROR",
               "INIT_PREDICTOR_ERROR", "SQLITE_OPEN_DATABASE_ERROR", "SQLITE_EXECUTE_SQL_ERROR")

# const char* (*)(void*): declared as returning void* so ctypes hands Presage our buffer's
# address as is, instead of a temporary copy it would free when the callback returns.
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)
_STRINGS = ctypes.POINTER(ctypes.c_char_p)  # char**, NULL-terminated
_HANDLE, _CODE, _STR = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p  # presage_t, error code
_SIGNATURES = {  # name -> (restype, argtypes), from presage.h
    "presage_new_with_config": (_CODE, [_CALLBACK, ctypes.c_void_p, _CALLBACK, ctypes.c_void_p,
                                        _STR, ctypes.POINTER(_HANDLE)]),
    "presage_free": (None, [_HANDLE]),
    "presage_free_string": (None, [_STR]),
    "presage_free_string_array": (None, [_STRINGS]),
    "presage_predict": (_CODE, [_HANDLE, ctypes.POINTER(_STRINGS)]),
    "presage_config": (_CODE, [_HANDLE, _STR, ctypes.POINTER(_STR)]),
}


def _error_name(code):
    return f"PRESAGE_{ERROR_NAMES[code]}" if 0 <= code < len(ERROR_NAMES) else f"code {code}"


@functools.cache
def load_library():
    """The libpresage C library with its signatures declared; KblmError if not installed."""
    for name in LIBRARY_NAMES:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        for function, (restype, argtypes) in _SIGNATURES.items():
            getattr(lib, function).restype = restype
            getattr(lib, function).argtypes = argtypes
        return lib
    raise KblmError(f"libpresage not found (tried {', '.join(LIBRARY_NAMES)}); {INSTALL_HINT}")


def deltas(order):
    """Interpolation weights delta_0..delta_{order-1} (their count sets Presage's n) as a str.

    "0.01 0.1 0.89" for 3, as in /etc/presage.xml; the same tenfold steps for other orders.
    """
    weights = [10.0 ** -(order - 1 - i) for i in range(order - 1)]
    weights.append(1.0 - sum(weights))
    return " ".join(f"{round(w, 10):g}" for w in weights)


def train_ngram_database(messages, db_path, order=3):
    """Builds Presage's sqlite n-gram tables _1_gram.._{order}_gram from ``messages``.

    In: list of str (one sentence each), output path, n-gram order. Out: the db Path.
    Text is lowercased (``text2ngram -l``), matching the predictor's LOWERCASE_MODE.
    """
    text2ngram = shutil.which("text2ngram")
    if text2ngram is None:
        raise KblmError(f"text2ngram not found; {INSTALL_HINT}")
    if not 1 <= order <= MAX_ORDER:
        raise KblmError(f"n-gram order {order} is outside 1..{MAX_ORDER}")
    lines = [" ".join(m.split()) for m in messages if m.strip()]  # one message per line
    if not lines:
        raise KblmError("no text to train the Presage n-gram database on")
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    # Built beside the target so os.replace is an atomic rename on one filesystem: a killed
    # run leaves a hidden temp dir, never a half-written database under db_path.
    with tempfile.TemporaryDirectory(dir=db_path.parent, prefix=f".{db_path.name}.") as tmp:
        corpus, partial = Path(tmp) / "corpus.txt", Path(tmp) / "ngrams.db"
        corpus.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="replace")
        for n in range(1, order + 1):  # one pass per n, all tables into the same db
            _run_text2ngram(text2ngram, n, corpus, partial)
        _drop_empty_words(partial, order)
        os.replace(partial, db_path)
    return db_path


def _run_text2ngram(text2ngram, n, corpus, db):
    """Adds table _{n}_gram of ``corpus`` to the sqlite file ``db``; KblmError on failure."""
    command = [text2ngram, "-n", str(n), "-l", "-f", "sqlite", "-o", str(db), str(corpus)]
    result = subprocess.run(command, capture_output=True, text=True, errors="replace")
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no error output"])[-1]
        raise KblmError(f"text2ngram -n {n} failed (exit {result.returncode}): {last}")


def _drop_empty_words(db, order):
    """Deletes the n-grams ending in "" that text2ngram emits after the file's last separator
    (left in, Presage would offer "" as a suggestion)."""
    with contextlib.closing(sqlite3.connect(db)) as connection, connection:
        for n in range(1, order + 1):
            connection.execute(f"DELETE FROM _{n}_gram WHERE word = ''")


def database_order(db_path):
    """The highest n with tables _1_gram.._n_gram in a Presage db; KblmError if none/unreadable."""
    db_path = Path(db_path)
    if not db_path.is_file():  # sqlite would silently create an empty db here
        raise KblmError(f"{db_path}: no such Presage database; build it with train_ngram_database")
    try:
        uri = db_path.resolve().as_uri() + "?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
            rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            tables = {name for (name,) in rows}
    except sqlite3.DatabaseError as error:
        raise KblmError(f"{db_path}: not a Presage sqlite database ({error})") from None
    order = 0
    while f"_{order + 1}_gram" in tables:
        order += 1
    if order == 0:
        raise KblmError(f"{db_path}: has no _1_gram table; not a Presage n-gram database")
    return order


def presage_settings(db_path, order, suggestions=3, repeat_suggestions=False):
    """Every Presage config variable we set, as {"Presage.Section.KEY": value}.

    Only the smoothed n-gram predictor on our db, learning off both in the predictor
    (LEARN) and the context tracker (ONLINE_LEARNING), so evaluation never changes the db.
    """
    ngram = f"Presage.Predictors.{PREDICTOR}."
    settings = {f"Presage.{section}.LOGGER": "ERROR" for section in (  # quiet, as in /etc
        "PredictorRegistry", "ContextTracker", "Selector", "PredictorActivator", "ProfileManager",
        f"Predictors.{PREDICTOR}", f"Predictors.{PREDICTOR}.DatabaseConnector")}
    settings.update({
        "Presage.PredictorRegistry.PREDICTORS": PREDICTOR,
        ngram + "PREDICTOR": "SmoothedNgramPredictor",
        ngram + "DBFILENAME": str(Path(db_path).resolve()),
        ngram + "DELTAS": deltas(order),
        ngram + "LEARN": "false",
        "Presage.ContextTracker.SLIDING_WINDOW_SIZE": "80",
        "Presage.ContextTracker.LOWERCASE_MODE": "yes",  # the db is lowercased too
        "Presage.ContextTracker.ONLINE_LEARNING": "no",
        "Presage.Selector.SUGGESTIONS": str(suggestions),
        "Presage.Selector.REPEAT_SUGGESTIONS": "yes" if repeat_suggestions else "no",
        "Presage.Selector.GREEDY_SUGGESTION_THRESHOLD": "0",
        "Presage.PredictorActivator.PREDICT_TIME": "1000",
        "Presage.PredictorActivator.MAX_PARTIAL_PREDICTION_SIZE": "60",
        "Presage.PredictorActivator.COMBINATION_POLICY": "Meritocracy",
        "Presage.ProfileManager.AUTOPERSIST": "false",
    })
    return settings


def _write_profile(settings, path):
    """Writes ``settings`` as a Presage XML profile (<Presage><Section><KEY>value...)."""
    root = ET.Element("Presage")
    for key, value in settings.items():
        node = root
        for part in key.split(".")[1:]:
            child = node.find(part)
            node = ET.SubElement(node, part) if child is None else child
        node.text = value
    ET.ElementTree(root).write(path, encoding="UTF-8", xml_declaration=True)


class PresagePredictor:
    """One Presage instance on an n-gram db: ``suggestions(text before cursor)`` -> words.

    Stateful like a keyboard: with repeat_suggestions False (Presage's default, used by its
    simulator) a word already offered for the current word is not offered again until
    the context moves on, so asking twice for the same context gives [] the second time.
    """

    name = "presage"

    def __init__(self, db_path, suggestions=3, *, order=None, repeat_suggestions=False):
        self._handle = None  # first, so close() in __del__ is safe if __init__ fails
        available = database_order(db_path)
        self.order = available if order is None else order
        if not 1 <= self.order <= available:
            raise KblmError(f"{db_path}: order {self.order} needs tables up to "
                            f"_{self.order}_gram, the db has up to _{available}_gram")
        if suggestions < 1:
            raise KblmError(f"suggestions must be at least 1, got {suggestions}")
        self.settings = presage_settings(db_path, self.order, suggestions, repeat_suggestions)
        self._lib = load_library()
        # Presage pulls the context through these callbacks during presage_predict. The
        # buffers sit in lists (not on self) so the callbacks make no cycle that delays
        # __del__; self keeps the callbacks, else ctypes frees them while Presage holds them.
        past, future = [ctypes.create_string_buffer(b"")], [ctypes.create_string_buffer(b"")]
        self._past = past
        self._callbacks = (_CALLBACK(lambda _: ctypes.addressof(past[0])),
                           _CALLBACK(lambda _: ctypes.addressof(future[0])))
        self._handle = self._new_instance()
        self._check_settings()

    def _new_instance(self):
        """presage_new_with_config on our profile; returns the presage_t handle.

        Not presage_new plus presage_config_set: presage_new first builds the default
        predictors of /etc/presage.xml, which create ~/.presage/lm.db in the user's home.
        """
        handle = ctypes.c_void_p()
        with tempfile.TemporaryDirectory(prefix="kblm-presage.") as tmp:
            profile = Path(tmp) / "presage.xml"
            _write_profile(self.settings, profile)
            code = self._lib.presage_new_with_config(
                self._callbacks[0], None, self._callbacks[1], None,
                os.fsencode(profile), ctypes.byref(handle))
        if code != 0 or not handle:
            raise KblmError(f"presage_new_with_config failed: {_error_name(code)}")
        return handle

    def _check_settings(self):
        """Reads every setting back: Presage falls back to its defaults without a word."""
        for key, want in self.settings.items():
            value = ctypes.c_char_p()
            code = self._lib.presage_config(self._handle, key.encode(), ctypes.byref(value))
            got = value.value.decode("utf-8", "replace") if value.value is not None else None
            if value:
                self._lib.presage_free_string(value)
            if code != 0 or got != want:
                self.close()
                raise KblmError(f"Presage did not take {key}={want!r} (has {got!r}, "
                                f"{_error_name(code)})")

    def suggestions(self, context: str) -> list[str]:
        """Up to ``suggestions`` (3) lowercase words for the text before the cursor.

        A context ending in a space asks for the next word; one ending mid-word gets
        completions of that prefix. Empty list when Presage has nothing (new to it).
        """
        if self._handle is None:
            raise KblmError("this PresagePredictor is closed")
        # Presage is byte-oriented C: UTF-8 bytes, a NUL would end the string early, and a
        # lone surrogate cannot be encoded, so it becomes "?" (a separator to Presage).
        self._past[0] = ctypes.create_string_buffer(
            context.encode("utf-8", "replace").replace(b"\0", b" "))
        array = _STRINGS()
        code = self._lib.presage_predict(self._handle, ctypes.byref(array))
        words = []
        if array:  # NULL-terminated char**, freed by Presage's own allocator
            while array[len(words)] is not None:
                words.append(array[len(words)].decode("utf-8", "replace"))
            self._lib.presage_free_string_array(array)
        if code != 0:
            raise KblmError(f"presage_predict failed: {_error_name(code)}")
        return [word for word in words if word]  # "" may come from dbs built elsewhere

    def reset(self, text=""):
        """A new text field: nothing to do, Presage reads the whole context on every call."""

    def close(self):
        """Frees the Presage instance; further suggestions() raise KblmError."""
        handle, self._handle = self._handle, None
        if handle is not None:
            self._lib.presage_free(handle)

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def presage_predictor_for(corpus_spec, cache_dir=None, order=3):
    """A PresagePredictor trained on the train split of ``corpus_spec`` (cached by content)."""
    import hashlib

    from data_pipeline.corpora import default_cache_dir, load_corpus

    corpus = load_corpus(corpus_spec, cache_dir)
    digest = hashlib.sha256("\n".join(corpus.splits["train"]).encode()).hexdigest()[:16]
    db = Path(cache_dir or default_cache_dir()) / "presage" / f"{corpus.name}-{order}gram-{digest}.db"
    if not db.exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        train_ngram_database(corpus.splits["train"], db, order)
    return PresagePredictor(db, order=order)
