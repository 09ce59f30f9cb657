"""The bundle's lexicon: words outside the vocabulary, with counts (docs/engine.md §16).

numpy only (it runs on the phone with the engine). The file ``lexicon.tsv.gz`` is gzip'd
UTF-8 text, one ``word<TAB>count`` line per word, sorted by the word's key (its lowercase
by the tokenizer's 1:1 table) in code point order, keys strictly increasing. ``kblm export`` writes it (``export.lexicon``); the
manifest's ``lexicon`` block gives its format version and word count, and ``files`` its
size and sha256 like every other file.

The loaded lexicon is a prefix index: the sorted keys (bisected), the counts (a numpy
array) and the words in count order (count descending, then key), so a strip never loops
over the words in Python. Loading does no Python work per word either (bundle load -> first
strip stays fast with 100,000 words): the file is checked and read with numpy over its
bytes, and a word or key becomes a str only when a strip or a search reads it (``Spans``).
"""
import bisect
import collections.abc
import functools
import gzip
import unicodedata
import zlib

import numpy as np

from data_pipeline import tokenization
from data_pipeline.errors import KblmError

FILE = "lexicon.tsv.gz"
FORMAT_VERSION = 1
MAX_WORD_CHARS = 64  # longer words are never learned, nor written to a lexicon (docs/engine.md §17)
LAST = "\U0010ffff"  # a key + LAST bounds every key that starts with it
COUNT_DIGITS = 18  # counts up to this many digits are read with numpy (longer: np.fromstring, as ever)


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


def lowercase_text(text):
    """``tokenization.lowercase(text)`` for a long text (many words joined): the same 1:1
    table, applied with numpy rather than character by character."""
    if text.isascii():
        return text.lower()  # the table's ASCII part is A-Z -> a-z
    table = _lowercase_table()
    points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)
    lowered = np.where(points < len(table), table[np.minimum(points, len(table) - 1)], points)
    return lowered.astype("<u4").tobytes().decode("utf-32-le", "surrogatepass")


@functools.cache
def _lowercase_table():
    """The 1:1 lowercase table as an array indexed by code point (identity where it has no entry)."""
    pairs = tokenization.unicode_tables()["lowercase"]
    table = np.arange(max(pairs) + 1, dtype=np.uint32)
    table[np.fromiter(pairs.keys(), np.int64, len(pairs))] = np.fromiter(pairs.values(), np.uint32, len(pairs))
    return table


class Spans(collections.abc.Sequence):
    """The strs ``blob[starts[i]:ends[i]]`` of UTF-8 bytes, each decoded when read: a list's
    reads (index, bisect, iterate) without a str object per item made at load. ``heads``,
    once set: each span's first 8 bytes as a big-endian uint64 (zero-padded)."""

    def __init__(self, blob, starts, ends):
        self.blob, self.starts, self.ends = blob, starts, ends
        self.heads = None

    def __len__(self):
        return len(self.starts)

    def __getitem__(self, i):
        try:
            return self.blob[self.starts[i]:self.ends[i]].decode("utf-8")
        except TypeError:  # a slice
            return [self[j] for j in range(*i.indices(len(self)))]

    def take(self, indices):
        """[self[i] for i in indices], with one numpy read of the offsets."""
        blob = self.blob
        return [blob[start:end].decode("utf-8")
                for start, end in zip(self.starts[indices].tolist(), self.ends[indices].tolist())]


class Lexicon:
    """The loaded lexicon: ``words`` (display forms) and ``keys`` in key order (sequences of
    str: lists, or ``Spans`` of the file), ``counts`` (float64), ``total`` (their sum) and
    ``by_count`` (indices, count descending then key)."""

    def __init__(self, words, keys, counts):
        self.words, self.keys = words, keys
        self.counts = np.asarray(counts, np.float64)
        self.total = float(self.counts.sum())
        self.by_count = count_order(self.counts)  # the extra ids' order (§16)
        self.rank = np.empty(len(keys), np.int64)
        self.rank[self.by_count] = np.arange(len(keys))

    def __len__(self):
        return len(self.keys)

    def __contains__(self, key):
        i = self._bisect(key)
        return i < len(self.keys) and self.keys[i] == key

    def words_at(self, indices):
        """The words at ``indices`` (an int array), as a list."""
        take = getattr(self.words, "take", None)
        return take(indices) if take is not None else [self.words[i] for i in indices]

    def range(self, key_prefix):
        """[lo, hi): the indices of the keys that start with ``key_prefix``."""
        return self._bisect(key_prefix), self._bisect(key_prefix + LAST)

    def _bisect(self, key):
        """bisect_left in the keys; with ``heads`` (Spans), among the keys whose first 8 bytes
        are the key's (a key's head below or above ``key``'s puts it below or above ``key``)."""
        heads = getattr(self.keys, "heads", None)
        if heads is None:
            return bisect.bisect_left(self.keys, key)
        head = np.uint64(int.from_bytes(key.encode("utf-8", "surrogatepass")[:8].ljust(8, b"\0"), "big"))
        return bisect.bisect_left(self.keys, key, int(heads.searchsorted(head, "left")),
                                  int(heads.searchsorted(head, "right")))

    @classmethod
    def parse(cls, data, vocab, expected_words, where):
        """Reads the file's bytes; checks the format (§16) against the vocabulary and the
        manifest's word count. Any fault is a one-line KblmError naming ``where``."""
        try:
            raw = gzip.decompress(data)
            text = raw.decode("utf-8")
        except (OSError, EOFError, zlib.error, UnicodeDecodeError) as e:
            raise KblmError(f"{where}: not a gzip'd UTF-8 lexicon ({' '.join(str(e).split())})") from None
        if text and not text.endswith("\n"):
            raise KblmError(f"{where}: the last line has no newline (one word<TAB>count per line)")
        lines = raw.count(b"\n")
        if lines != expected_words:
            raise KblmError(f"{where}: {lines:,} words, but manifest.json field lexicon.words is "
                            f"{expected_words:,}")
        starts, tabs, ends = _fields(raw)
        counts = _counts(raw, tabs, ends) if lines and len(tabs) == lines and \
            np.all((starts < tabs) & (tabs + 1 < ends)) else None  # one tab per line, a word before it
        if counts is None:
            raise _line_error(text, where)
        counts = counts.astype(np.float64)
        if counts.min() < 1:
            number = int(np.argmin(counts)) + 1
            raise KblmError(f"{where}: line {number}: expected word<TAB>positive count, got a count of 0")
        words = Spans(raw, starts, tabs)
        keys = _keys(raw, text, starts, tabs, ends)
        words_of_keys = _words(keys.blob)
        keys.heads = _chunks(words_of_keys, keys.starts, keys.ends - keys.starts)
        first = _first_not_increasing(keys, words_of_keys)
        if first is not None:  # strictly increasing: sorted, each word once
            number = first + 2
            raise KblmError(f"{where}: line {number}: {words[number - 1]!r} is out of order or repeats a "
                            "word (the lines are sorted by word, each word once)")
        forms = keys if vocab.tokenizer_options.lowercase else words
        inside = _first_inside(forms, vocab.tokens)
        if inside is not None:
            raise KblmError(f"{where}: line {inside + 1}: {words[inside]!r} is in the vocabulary "
                            "(the lexicon holds only words outside it)")
        return cls(words, keys, counts)


def _fields(blob):
    """(starts, tabs, ends) of the lines of ``blob``: where each begins, its tabs, its newline."""
    buffer = np.frombuffer(blob, np.uint8)
    ends = np.flatnonzero(buffer == 10)
    return np.concatenate(([0], ends[:-1] + 1)), np.flatnonzero(buffer == 9), ends


def _counts(raw, tabs, ends):
    """The int64 counts between each tab and its newline, or None if one is not ASCII digits."""
    lengths = ends - tabs - 1
    if lengths.max() > COUNT_DIGITS:  # past int64's digits: np.fromstring (it saturates)
        counts = [raw[tab + 1:end] for tab, end in zip(tabs.tolist(), ends.tolist())]
        if not all(count.isdigit() for count in counts):
            return None
        return np.fromstring(b"\n".join(counts).decode("ascii"), dtype=np.int64, sep="\n")
    buffer = np.frombuffer(raw, np.uint8)
    counts = np.zeros(len(tabs), np.int64)
    live, scale = np.arange(len(tabs)), 1
    for place in range(int(lengths.max())):  # the digits right to left, 10**place each
        digits = buffer[ends[live] - 1 - place] - np.uint8(48)
        if np.any(digits > 9):
            return None
        counts[live] += digits.astype(np.int64) * scale
        scale *= 10
        live = live[lengths[live] > place + 1]
    return counts


def _keys(raw, text, starts, tabs, ends):
    """The words' keys by the 1:1 table (§16): bytes.lower() on ASCII; the table on each
    line with other characters (on the whole text, with numpy, when there are many)."""
    lowered = raw.lower()
    if raw.isascii():
        return Spans(lowered, starts, tabs)
    lines = np.unique(np.searchsorted(ends, np.flatnonzero(np.frombuffer(raw, np.uint8) >= 128)))
    if len(lines) <= len(ends) // 8:  # those lines one by one (a key may differ in length in UTF-8)
        pieces, previous, deltas = [], 0, np.zeros(len(ends), np.int64)
        for line, start, tab in zip(lines.tolist(), starts[lines].tolist(), tabs[lines].tolist()):
            key = tokenization.lowercase(raw[start:tab].decode("utf-8")).encode("utf-8")
            pieces += [lowered[previous:start], key]
            previous, deltas[line] = tab, len(key) - (tab - start)
        pieces.append(lowered[previous:])
        shifts = np.cumsum(deltas)
        return Spans(b"".join(pieces), starts + shifts - deltas, tabs + shifts)
    blob = lowercase_text(text).encode("utf-8")
    key_starts, key_tabs, _ = _fields(blob)
    return Spans(blob, key_starts, key_tabs)


def count_order(counts):
    """``np.lexsort((np.arange(n), -counts))``: indices by count descending, then index; one
    sort of int64s (count and index packed) when the counts are integers that fit."""
    counts = np.asarray(counts, np.float64)
    if not counts.size:
        return np.zeros(0, np.int64)
    bits, top = len(counts).bit_length(), counts.max()
    if top < 2.0 ** min(53, 62 - bits) and counts.min() >= 0 and np.all(counts == np.floor(counts)):
        packed = ((top - counts).astype(np.int64) << bits) | np.arange(len(counts))
        return np.sort(packed) & ((1 << bits) - 1)
    return np.lexsort((np.arange(len(counts)), -counts))


def _line_error(text, where):
    """The first line that is not word<TAB>count (digits), as the one-line error."""
    number = next(i for i, line in enumerate(text.split("\n"), 1)
                  if line.count("\t") != 1 or not line.partition("\t")[0]
                  or not (line.partition("\t")[2].isascii() and line.partition("\t")[2].isdigit()))
    line = text.split("\n")[number - 1]
    return KblmError(f"{where}: line {number}: expected word<TAB>positive count, got {line[:60]!r}")


def _words(blob):
    """``blob`` (zero-padded) as big-endian uint64s: _chunks reads any 8 bytes from two of them."""
    return np.frombuffer(blob + bytes(16 - len(blob) % 8), ">u8").astype(np.uint64)


def _chunks(words, at, remaining):
    """The 8 bytes from each offset ``at`` as a big-endian uint64, zero from ``remaining``
    bytes on (each at least 1); ``words``: _words(the blob)."""
    bits = (at & 7).astype(np.uint64) * np.uint64(8)
    value = (words[at >> 3] << bits) | np.where(bits == 0, np.uint64(0),
                                                words[(at >> 3) + 1] >> ((np.uint64(64) - bits) & np.uint64(63)))
    shift = (8 * (8 - np.minimum(remaining, 8))).astype(np.uint64)
    return (value >> shift) << shift


def _first_not_increasing(keys, words):
    """The first i with keys[i] >= keys[i + 1], or None: eight bytes at a time (``heads``,
    then ``words``: _words(keys.blob)) over the pairs still equal (UTF-8 bytes compare in code
    point order, as strs do)."""
    starts, lengths = keys.starts, keys.ends - keys.starts
    pending, offset, bad = np.arange(len(lengths) - 1), 0, []
    a, b = keys.heads[:-1], keys.heads[1:]
    while True:
        bad.append(pending[a > b])
        pending, offset = pending[a == b], offset + 8
        ended = np.minimum(lengths[pending], lengths[pending + 1]) <= offset  # one is a prefix of the other
        bad.append(pending[ended & (lengths[pending] >= lengths[pending + 1])])
        pending = pending[~ended]
        if not pending.size:
            break
        a = _chunks(words, starts[pending] + offset, lengths[pending] - offset)
        b = _chunks(words, starts[pending + 1] + offset, lengths[pending + 1] - offset)
    bad = np.concatenate(bad)
    return int(bad.min()) if bad.size else None


def _hashes(spans):
    """A 64-bit hash of each span from its length and first and last 8 bytes (equal spans,
    equal hashes; different spans may collide), with numpy."""
    lengths, words = spans.ends - spans.starts, _words(spans.blob)
    tails = np.maximum(spans.starts, spans.ends - 8)
    mixed = (lengths.astype(np.uint64) ^ _chunks(words, spans.starts, lengths)) * np.uint64(0x9E3779B97F4A7C15)
    mixed ^= (mixed >> np.uint64(32)) ^ _chunks(words, tails, spans.ends - tails)
    mixed *= np.uint64(0xBF58476D1CE4E5B9)
    return mixed ^ (mixed >> np.uint64(31))


def _first_inside(forms, tokens):
    """The first i whose ``forms[i]`` is one of ``tokens``, or None: hashes pick the
    candidates (a bitmap of the tokens' top 20 hash bits, then the whole hashes), the strs decide."""
    blob = "\n".join(tokens).encode("utf-8") + b"\n"
    token_starts, _, token_ends = _fields(blob)
    known, top = np.sort(_hashes(Spans(blob, token_starts, token_ends))), np.uint64(64 - 20)
    bitmap = np.zeros(1 << 20, bool)
    bitmap[known >> top] = True
    hashes = _hashes(forms)
    candidates = np.flatnonzero(bitmap[hashes >> top])
    at = np.minimum(np.searchsorted(known, hashes[candidates]), len(known) - 1)
    candidates = candidates[known[at] == hashes[candidates]]
    tokens = set(tokens)
    return next((int(i) for i in candidates if forms[i] in tokens), None)
