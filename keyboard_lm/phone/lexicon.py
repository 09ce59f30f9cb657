"""The bundle's lexicon: words outside the vocabulary, with counts (docs/engine.md §16).

numpy only (it runs on the phone with the engine). The file ``lexicon.tsv.gz`` is gzip'd
UTF-8 text, one ``word<TAB>count`` line per word, sorted by the word's key (its lowercase
by the tokenizer's 1:1 table) in code point order, keys strictly increasing. ``kblm export`` writes it (``export.lexicon``); the
manifest's ``lexicon`` block gives its format version and word count, and ``files`` its
size and sha256 like every other file.

The loaded lexicon is a prefix index: the sorted keys (a list, bisected), the counts (a
numpy array) and the words in count order (count descending, then key), so a strip never
loops over the words in Python.
"""
import bisect
import gzip
import operator
import re
import unicodedata
import zlib

import numpy as np

from data_pipeline import tokenization
from data_pipeline.errors import KblmError
from data_pipeline.vocab import UNK_ID

FILE = "lexicon.tsv.gz"
FORMAT_VERSION = 1
MAX_WORD_CHARS = 64  # longer words are never learned, nor written to a lexicon (docs/engine.md §17)
LAST = "\U0010ffff"  # a key + LAST bounds every key that starts with it
_NON_ASCII = re.compile("[^\x00-\x7f]+")


def learnable(word):
    """A word the keyboard may learn (§17): 1-64 code points, no control or format
    characters, at least one letter (not only digits or number punctuation)."""
    return (0 < len(word) <= MAX_WORD_CHARS and any(ch.isalpha() for ch in word)
            and not any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in word)
            and not tokenization.ends_with_space(word) and "\t" not in word and "\n" not in word)


def key_function(options=None):
    """How words are matched against typed prefixes and each other: the tokenizer's 1:1
    lowercase (case-insensitive, like the vocabulary's completions, §3)."""
    return tokenization.lowercase


def vocabulary_form(word, options):
    """The token a word is in the vocabulary as: its lowercase if the vocabulary folds case."""
    return tokenization.lowercase(word) if options.lowercase else word


def encode(entries):
    """``[(word, count)]`` sorted by key -> the file's bytes (deterministic: no name, no time)."""
    text = "".join(f"{word}\t{count}\n" for word, count in entries)
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


class Lexicon:
    """The loaded lexicon: ``words`` (display forms) and ``keys`` in key order, ``counts``
    (float64), ``total`` (their sum) and ``by_count`` (indices, count descending then key)."""

    def __init__(self, words, keys, counts):
        self.words, self.keys = words, keys
        self.counts = np.asarray(counts, np.float64)
        self.total = float(self.counts.sum())
        self.by_count = np.lexsort((np.arange(len(keys)), -self.counts))  # the extra ids' order (§16)
        self.rank = np.empty(len(keys), np.int64)
        self.rank[self.by_count] = np.arange(len(keys))

    def __len__(self):
        return len(self.keys)

    def __contains__(self, key):
        i = bisect.bisect_left(self.keys, key)
        return i < len(self.keys) and self.keys[i] == key

    def range(self, key_prefix):
        """[lo, hi): the indices of the keys that start with ``key_prefix``."""
        return (bisect.bisect_left(self.keys, key_prefix), bisect.bisect_left(self.keys, key_prefix + LAST))

    @classmethod
    def parse(cls, data, vocab, expected_words, where):
        """Reads the file's bytes; checks the format (§16) against the vocabulary and the
        manifest's word count. Any fault is a one-line KblmError naming ``where``."""
        try:
            text = gzip.decompress(data).decode("utf-8")
        except (OSError, EOFError, zlib.error, UnicodeDecodeError) as e:
            raise KblmError(f"{where}: not a gzip'd UTF-8 lexicon ({' '.join(str(e).split())})") from None
        if text and not text.endswith("\n"):
            raise KblmError(f"{where}: the last line has no newline (one word<TAB>count per line)")
        lines = text.count("\n")
        if lines != expected_words:
            raise KblmError(f"{where}: {lines:,} words, but manifest.json field lexicon.words is "
                            f"{expected_words:,}")
        fields = text.replace("\n", "\t").split("\t")[:-1]  # word, count, word, count, ...
        words, counts = fields[0::2], fields[1::2]
        if text.count("\t") != lines or not all(words) or not all(counts) or not "".join(counts).isascii() \
                or not "".join(counts).isdigit():
            number = next(i for i, line in enumerate(text.split("\n"), 1)
                          if line.count("\t") != 1 or not line.partition("\t")[0]
                          or not (line.partition("\t")[2].isascii() and line.partition("\t")[2].isdigit()))
            line = text.split("\n")[number - 1]
            raise KblmError(f"{where}: line {number}: expected word<TAB>positive count, got {line[:60]!r}")
        counts = np.fromstring("\n".join(counts), dtype=np.int64, sep="\n").astype(np.float64) if counts \
            else np.zeros(0)
        if lines and counts.min() < 1:
            number = int(np.argmin(counts)) + 1
            raise KblmError(f"{where}: line {number}: expected word<TAB>positive count, got a count of 0")
        joined = "\n".join(words)
        # the 1:1 table (§16): bytes.lower() on ASCII, the table itself on the non-ASCII runs
        keys = _NON_ASCII.sub(lambda run: tokenization.lowercase(run.group()),
                              joined.encode("utf-8").lower().decode("utf-8")).split("\n") if words else []
        if any(map(operator.ge, keys, keys[1:])):  # strictly increasing: sorted, each word once
            number = next(i for i, (a, b) in enumerate(zip(keys, keys[1:]), 2) if not a < b)
            raise KblmError(f"{where}: line {number}: {words[number - 1]!r} is out of order or repeats a "
                            "word (the lines are sorted by word, each word once)")
        forms = keys if vocab.tokenizer_options.lowercase else words
        if any(map(set(vocab.tokens).__contains__, forms)):
            inside = next(i for i, form in enumerate(forms) if vocab.id(form) != UNK_ID)
            raise KblmError(f"{where}: line {inside + 1}: {words[inside]!r} is in the vocabulary "
                            "(the lexicon holds only words outside it)")
        return cls(words, keys, counts)
