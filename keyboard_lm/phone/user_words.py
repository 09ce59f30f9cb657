"""Words the user teaches the keyboard (docs/engine.md §17). numpy only.

A word typed in full that is neither in the vocabulary nor in the bundle's lexicon is
counted each time it is committed (the engine feeds it as <unk>); after ``learn_after``
commits (2 by default) it is learned, and the strip offers it like a lexicon word (§16).
The engine undoes a commit when the user backspaces into the word, so backspaced text
never counts. ``remove`` forgets a word and blocks it (never learned again) until ``add``
brings it back. Saved as JSON beside the personal cache (``words_path``).
"""
import collections
import json
import os
from pathlib import Path

import numpy as np

from data_pipeline.errors import KblmError
from data_pipeline.textio import atomic_write_text
from keyboard_lm.phone.lexicon import LAST, learnable

FORMAT_VERSION = 1
DEFAULT_LEARN_AFTER = 2


def words_path(cache_path):
    """Where the user's words are saved beside a personal cache: ``cache.json`` -> ``cache.words.json``."""
    cache_path = Path(cache_path)
    return cache_path.with_name(cache_path.stem + ".words.json")


class UserWords:
    """Counts of committed out-of-vocabulary words, keyed by ``key`` (the tokenizer's lowercase
    for a lowercasing vocabulary): ``counts`` (commits), ``forms`` (the case last typed),
    ``pairs`` ((prev token, key) -> commits right after ``prev``), ``blocked`` keys."""

    def __init__(self, learn_after=DEFAULT_LEARN_AFTER, key=None):
        if not isinstance(learn_after, int) or isinstance(learn_after, bool) or learn_after < 1:
            raise KblmError(f"learn_after must be a positive integer, got {learn_after!r}")
        from data_pipeline import tokenization

        self.learn_after = learn_after
        self.key = key or tokenization.lowercase
        self.counts, self.forms, self.blocked = {}, {}, set()
        self.pairs = collections.defaultdict(collections.Counter)  # prev token -> Counter(key)
        self._log = []  # commits, newest last: (key, prev, the form before)
        self._index = None  # the learned words as a prefix index, rebuilt after a change

    # -- learning -------------------------------------------------------------------------

    def learned(self, key):
        return self.counts.get(key, 0) >= self.learn_after

    def commit(self, prev, word):
        """The user committed ``word`` (outside the vocabulary and the lexicon) after the token
        ``prev``; returns True if it was counted (the engine undoes it on a backspace)."""
        key = self.key(word)
        if key in self.blocked or not learnable(word):
            return False
        self._log.append((key, prev, self.forms.get(key)))
        self.counts[key] = self.counts.get(key, 0) + 1
        self.forms[key] = word
        self.pairs[prev][key] += 1
        self._index = None
        return True

    def undo(self):
        """Takes back the latest counted commit (the user deleted that word)."""
        if not self._log:
            return
        key, prev, form = self._log.pop()
        if key not in self.counts:  # removed since
            return
        self.counts[key] -= 1
        following = self.pairs.get(prev)
        if following is not None and following[key] > 0:
            following[key] -= 1
            if not following[key]:
                del following[key]
                if not following:
                    del self.pairs[prev]
        if self.counts[key] == 0:
            del self.counts[key], self.forms[key]
        elif form is not None:
            self.forms[key] = form
        self._index = None

    def add(self, word):
        """The user adds ``word``: learned at once, and no longer blocked."""
        if not learnable(word):
            raise KblmError(f"{word[:70]!r}: not a word the keyboard can learn (1-64 characters, a letter, "
                            "no control characters)")
        key = self.key(word)
        self.blocked.discard(key)
        self.counts[key] = max(self.counts.get(key, 0), self.learn_after)
        self.forms[key] = word
        self._index = None

    def remove(self, word):
        """Forgets ``word`` and blocks it: it is never learned again until added back.
        Returns True if it had been learned."""
        key = self.key(word)
        was = self.learned(key)
        self.counts.pop(key, None)
        self.forms.pop(key, None)
        for prev in list(self.pairs):
            self.pairs[prev].pop(key, None)
            if not self.pairs[prev]:
                del self.pairs[prev]
        self.blocked.add(key)
        self._index = None
        return was

    def words(self):
        """The learned words, [(form, commits)], most committed first, then by key."""
        keys = sorted((k for k in self.counts if self.learned(k)), key=lambda k: (-self.counts[k], k))
        return [(self.forms[k], self.counts[k]) for k in keys]

    # -- scoring (docs/engine.md §16) -----------------------------------------------------

    def index(self):
        """(keys sorted, forms, counts float64) of the learned words; cached until a change."""
        if self._index is None:
            keys = sorted(k for k in self.counts if self.learned(k))
            self._index = (keys, [self.forms[k] for k in keys], np.array([self.counts[k] for k in keys], np.float64))
        return self._index

    def __len__(self):
        return len(self.index()[0])

    def range(self, key_prefix):
        import bisect

        keys = self.index()[0]
        return bisect.bisect_left(keys, key_prefix), bisect.bisect_left(keys, key_prefix + LAST)

    def probabilities(self, prev, lo=0, hi=None):
        """p_user(w | prev) for the learned words ``lo:hi`` (key order): the cache's bigram
        estimate backed off to the unigram, smoothing 1 (§16)."""
        keys, _, counts = self.index()
        hi = len(keys) if hi is None else hi
        following = self.pairs.get(prev) or {}
        bigram = {k: c for k, c in following.items() if self.learned(k)}
        result = counts[lo:hi] / counts.sum()
        if bigram:
            result = result + np.array([bigram.get(k, 0) for k in keys[lo:hi]], np.float64)
        return result / (sum(bigram.values()) + 1.0)

    # -- persistence ------------------------------------------------------------------------

    def to_json(self):
        return {"format_version": FORMAT_VERSION, "learn_after": self.learn_after,
                "words": [[self.forms[k], self.counts[k]] for k in sorted(self.counts)],
                "blocked": sorted(self.blocked),
                "pairs": [[prev, self.forms[k], c] for prev in sorted(self.pairs)
                          for k, c in sorted(self.pairs[prev].items()) if k in self.forms]}

    def save(self, path):
        atomic_write_text(path, json.dumps(self.to_json(), ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path, key=None):
        """Reads a saved file; any fault is a one-line KblmError naming it."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise KblmError(f"{path}: not a readable user-word file ({' '.join(str(e).split())})") from None

        def bad(what):
            return KblmError(f"{path}: {what}")

        if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
            raise bad(f"field format_version: expected {FORMAT_VERSION}")
        words = cls(data.get("learn_after", DEFAULT_LEARN_AFTER), key)
        for field in ("words", "blocked", "pairs"):  # lists (anything else would not iterate, or iterate wrongly)
            if not isinstance(data.get(field, []), list):
                raise bad(f"field {field}: expected a list, got {str(data[field])[:60]}")

        def count(value):
            return isinstance(value, int) and not isinstance(value, bool) and value > 0

        for i, entry in enumerate(data.get("words", [])):
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)
                    and learnable(entry[0]) and count(entry[1])):
                raise bad(f"field words[{i}]: expected [word, positive count], got {str(entry)[:60]}")
            words.counts[words.key(entry[0])] = entry[1]
            words.forms[words.key(entry[0])] = entry[0]
        for i, entry in enumerate(data.get("blocked", [])):
            if not isinstance(entry, str):
                raise bad(f"field blocked[{i}]: expected a word, got {str(entry)[:60]}")
            words.blocked.add(words.key(entry))
        for i, entry in enumerate(data.get("pairs", [])):
            if not (isinstance(entry, list) and len(entry) == 3 and all(isinstance(x, str) for x in entry[:2])
                    and count(entry[2]) and words.key(entry[1]) in words.counts):
                raise bad(f"field pairs[{i}]: expected [previous token, a listed word, positive count], "
                          f"got {str(entry)[:60]}")
            words.pairs[entry[0]][words.key(entry[1])] += entry[2]
        return words


def load_or_start(path, key=None, warn=None):
    """The user's words saved at ``path``; none if there is no file. A corrupt file is kept
    beside it (``NAME.bad``, or ``NAME.bad.1``...) and the keyboard starts with no learned
    words, saying so once through ``warn``."""
    path = Path(path)
    if not path.exists():
        return UserWords(key=key)
    try:
        return UserWords.load(path, key)
    except KblmError as error:
        aside = path.with_name(path.name + ".bad")
        number = 0
        while aside.exists():
            number += 1
            aside = path.with_name(f"{path.name}.bad.{number}")
        os.replace(path, aside)
        if warn is not None:
            warn(f"{error}; starting with no learned words (the file is kept as {aside})")
        return UserWords(key=key)
