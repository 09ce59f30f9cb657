"""Reading the lexicon without Python work per word (issue 18: bundle load -> first strip with
100,000 words): ``Lexicon.parse`` reads the file with numpy over its bytes, and must give
what reading it line by line gives — the same keys (the 1:1 lowercase), counts, count order
and prefix ranges — and refuse a bad file at the same line in the same words. Also the
engine's vocabulary index, built the same way. No bundle, no model: a stand-in vocabulary."""
import bisect
import gzip
import random
from types import SimpleNamespace

import numpy as np
import pytest

from data_pipeline import tokenization
from data_pipeline.errors import KblmError
from keyboard_lm.phone.lexicon import LAST, Lexicon, Spans, count_order, encode, lowercase_text

VOCABULARY = ["<pad>", "<unk>", "<bos>", "<eos>", "the", "station", "straße", "Kiev"]


def vocabulary(lowercase=True):
    return SimpleNamespace(tokens=VOCABULARY, tokenizer_options=SimpleNamespace(lowercase=lowercase))


def sorted_entries(words):
    """[(word, count)] in the file's order (by key), counts from a fixed generator."""
    rng = random.Random(len(words))
    return sorted(((w, rng.choice([1, 1, 2, 7, 7, 40, 123456789])) for w in words),
                  key=lambda entry: tokenization.lowercase(entry[0]))


def parse(entries, lowercase=True):
    return Lexicon.parse(encode(entries), vocabulary(lowercase), len(entries), "lexicon.tsv.gz")


def refusal(text, words, lowercase=True):
    with pytest.raises(KblmError) as error:
        Lexicon.parse(gzip.compress(text.encode("utf-8")), vocabulary(lowercase), words, "lexicon.tsv.gz")
    return str(error.value)


def words_of(rng, alphabet, count):
    """``count`` distinct words (distinct keys) over ``alphabet``, many sharing long prefixes."""
    stems = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 14))) for _ in range(count // 4 + 1)]
    words, keys = [], set()
    while len(words) < count:
        word = rng.choice(stems) + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        if tokenization.lowercase(word) not in keys and tokenization.lowercase(word) not in VOCABULARY:
            keys.add(tokenization.lowercase(word))
            words.append(word)
    return words


ASCII = "abcdefghijklmnopqrstuvwxyzKLMZ'-0"
MIXED = ASCII + "éÉßİΣσςЖжⱢɫ\U0001d400"  # Ɫ and İ lowercase to characters of other UTF-8 lengths


FEW = ["İstanbul", "Ɫama", "ⱢⱢⱢⱢⱢⱢⱢⱢⱢx", "café", "Ωmega", "zürich"]  # among ASCII words: read line by line


@pytest.mark.parametrize("alphabet,extra", [(ASCII, []), (ASCII, FEW), (MIXED, [])],
                         ids=["ascii", "few non-ascii lines", "mostly non-ascii"])
def test_the_numpy_reading_gives_what_line_by_line_reading_gives(alphabet, extra):
    rng, count = random.Random(0), 3000
    entries = sorted_entries(words_of(rng, alphabet, count - len(extra)) + extra)
    lexicon = parse(entries)
    words = [w for w, _ in entries]
    keys = [tokenization.lowercase(w) for w in words]
    counts = np.array([c for _, c in entries], np.float64)
    assert isinstance(lexicon.keys, Spans) and len(lexicon) == count
    assert list(lexicon.words) == words and list(lexicon.keys) == keys
    assert lexicon.counts.tolist() == counts.tolist() and lexicon.total == counts.sum()
    assert lexicon.by_count.tolist() == np.lexsort((np.arange(count), -counts)).tolist()
    assert (lexicon.rank[lexicon.by_count] == np.arange(count)).all()
    prefixes = [k[:rng.randint(1, 12)] for k in rng.sample(keys, 300)] + ["", "zzzz", "é", "ß", LAST, "a\0"]
    for prefix in prefixes:
        assert lexicon.range(prefix) == (bisect.bisect_left(keys, prefix), bisect.bisect_left(keys, prefix + LAST))
        assert (prefix in lexicon) == (prefix in keys)
    assert all(key in lexicon for key in keys[::17])


@pytest.mark.parametrize("text,words,message", [
    ("Kasia\t3\nquokka\t2\nquokkas\t1\nquokkaz\t1\nquokkaz\t1\n", 5, "line 5: 'quokkaz' is out of order"),
    ("Kasia\t3\nzanzibar\t1\nZanzibar\t2\n", 3, "line 3: 'Zanzibar' is out of order"),  # one key twice
    ("abcdefghijklmnopq\t1\nabcdefghijklmnop\t1\n", 2, "line 2: 'abcdefghijklmnop' is out of order"),
    ("abcdefghijklmnopqr\t1\nabcdefghijklmnopqa\t1\n", 2, "line 2: 'abcdefghijklmnopqa' is out of order"),
    ("éa\t1\nÉa\t1\n", 2, "line 2: 'Éa' is out of order"),
    ("İx\t1\nix\t1\n", 2, "line 2: 'ix' is out of order"),  # İ's key is i
    ("a\t1\t2\n3\n", 2, "line 1: expected word<TAB>positive count"),  # two tabs, then none
    ("a\t1\n\t2\n", 2, "line 2: expected word<TAB>positive count"),
    ("a\t1\nb\t\n", 2, "line 2: expected word<TAB>positive count"),
    ("a\t1\nb\t1x\n", 2, "line 2: expected word<TAB>positive count"),
    ("a\t1\nb\t١\n", 2, "line 2: expected word<TAB>positive count"),  # a digit, not ASCII
    ("a\t1\nb\t00\n", 2, "line 2: expected word<TAB>positive count, got a count of 0"),
    ("quokka\t2\nStation\t3\n", 2, "line 2: 'Station' is in the vocabulary"),  # by its key
    ("quokka\t2\nstraße\t1\n", 2, "line 2: 'straße' is in the vocabulary"),
])
def test_a_bad_file_is_refused_at_its_line(text, words, message):
    assert message in refusal(text, words)


def test_a_cased_vocabulary_compares_the_words_themselves():
    assert "line 1: 'Kiev' is in the vocabulary" in refusal("Kiev\t3\nquokka\t2\n", 2, lowercase=False)
    assert len(parse([("kiev", 3), ("Station", 2)], lowercase=False)) == 2  # not the tokens "Kiev", "station"


def test_counts_of_any_length_read_as_before():
    lexicon = parse([("a", 10**18 - 1), ("b", 1), ("c", 9007199254740993)])
    assert lexicon.counts.tolist() == [float(10**18 - 1), 1.0, float(9007199254740993)]
    huge = Lexicon.parse(gzip.compress(b"a\t123456789012345678901234\nb\t5\n"), vocabulary(), 2, "x")
    assert huge.counts.tolist() == [float(np.iinfo(np.int64).max), 5.0]  # np.fromstring saturates, as ever


def test_count_order_is_lexsorts():
    rng = np.random.default_rng(0)
    for counts in (rng.integers(1, 5, 1000).astype(float), rng.integers(1, 10**9, 1000).astype(float),
                   rng.random(100) * 10, np.array([2.0**60, 2.0**60, 3.0]), np.zeros(0)):
        assert count_order(counts).tolist() == np.lexsort((np.arange(len(counts)), -counts)).tolist()


def test_lowercase_text_is_the_tokenizers_lowercase():
    table = tokenization.unicode_tables()["lowercase"]
    text = "".join(map(chr, table)) + "ABC xyz İstanbul ΣΟΦΙΑ \U0001d400\n\t" + chr(0x10ffff)
    assert lowercase_text(text) == tokenization.lowercase(text)
    assert lowercase_text("Plain ASCII") == "plain ascii"


def test_the_engines_vocabulary_index_is_as_before(toy_bundle):
    """suggestible: not special, is_word; _keys: the suggestible tokens' lowercase, sorted, ties by id."""
    from data_pipeline.vocab import SPECIAL_TOKENS
    from keyboard_lm.phone.bundle import load_bundle
    from keyboard_lm.phone.keyboard import KeyboardEngine

    engine = KeyboardEngine(load_bundle(toy_bundle))
    tokens = engine.vocab.tokens
    suggestible = [i >= len(SPECIAL_TOKENS) and tokenization.is_word(t) for i, t in enumerate(tokens)]
    keyed = sorted((tokenization.lowercase(tokens[i]), i) for i in np.flatnonzero(suggestible).tolist())
    assert engine.suggestible.tolist() == suggestible
    assert engine._keys == [k for k, _ in keyed] and engine._key_ids.tolist() == [i for _, i in keyed]
