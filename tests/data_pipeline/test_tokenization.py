"""The tokenization spec: examples, TF-freedom, and parity of the two implementations."""
import subprocess
import sys
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_pipeline import tokenization
from data_pipeline.tokenization import TokenizerOptions, tokenize

CASED = TokenizerOptions(lowercase=False)


@pytest.mark.parametrize("text, tokens", [
    ("Don't stop, it's well-known.", ["don't", "stop", ",", "it's", "well-known", "."]),
    ("Don’t", ["don't"]),  # typographic apostrophe
    ("pi is 3.14, not 1,000 or 2nd", ["pi", "is", "3.14", ",", "not", "1,000", "or", "2nd"]),
    ("a--b ''c'' x-", ["a", "-", "-", "b", "'", "'", "c", "'", "'", "x", "-"]),
    ("ﬁne Ⅻ ① ＡＢＣ", ["fine", "xii", "1", "abc"]),  # NFKC
    ("I ❤️ it 👍🏽 👨\u200d👩\u200d👧 🇺🇸🇫🇷", ["i", "❤️", "it", "👍🏽", "👨\u200d👩\u200d👧", "🇺🇸", "🇫🇷"]),
    ("مرحبا بالعالم!", ["مرحبا", "بالعالم", "!"]),
    ("e\u0301te\u0301", ["été"]),  # composed by NFKC
    ("tab\there\x00nul\u2028line", ["tab", "here", "nul", "line"]),
    ("", []),
    (" \t\n ", []),
    ("ΟΔΟΣ", ["οδοσ"]),  # simple 1:1 lowercase: no final-sigma rule
])
def test_examples(text, tokens):
    assert tokenize(text) == tokens


def test_sentences():
    from data_pipeline.tokenization import split_sentences

    assert split_sentences("Ok. See you at 3.15! Really? yes") == ["Ok.", "See you at 3.15!", "Really?", "yes"]
    assert split_sentences("no end ") == ["no end"] and split_sentences(" ") == []
    assert split_sentences("Wait．What") == ["Wait．", "What"]  # fullwidth full stop (NFKC '.')


def test_case_is_kept_when_asked():
    assert tokenize("I saw Atlanta's Mayor", CASED) == ["I", "saw", "Atlanta's", "Mayor"]


def test_twin_never_imports_tensorflow():
    code = ("import sys; sys.modules['tensorflow'] = None\n"
            "from data_pipeline import tokenization, vocab, corpora, textio\n"
            "assert tokenization.tokenize(\"don't panic\") == [\"don't\", 'panic']\n"
            "assert not any(m.startswith('tensorflow') for m in sys.modules if sys.modules[m])")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- parity: the tf-text pipeline and the pure-Python twin ---------------------------------

@pytest.fixture(scope="module")
def tf_tokenizers():
    from data_pipeline.tf_tokenization import TFTokenizer

    return {True: TFTokenizer(TokenizerOptions()), False: TFTokenizer(CASED)}


def assert_parity(tf_tokenizers, texts, lowercase=True):
    got = tf_tokenizers[lowercase](texts).to_list()
    options = TokenizerOptions(lowercase=lowercase)
    for text, tf_tokens in zip(texts, got):
        expected = tokenize(text, options)
        assert [t.decode("utf-8") for t in tf_tokens] == expected, f"text {text!r}"


def test_parity_every_code_point(tf_tokenizers):
    # Every Unicode scalar value, alone and between letters: the tables are complete.
    code_points = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for lowercase in (True, False):
        for template in ("{}", "A{}b"):
            texts = [template.format(chr(c)) for c in code_points]
            for start in range(0, len(texts), 200_000):
                assert_parity(tf_tokenizers, texts[start:start + 200_000], lowercase)


text_chars = st.characters(exclude_categories=("Cs",))  # surrogates are not UTF-8 text
emoji = st.sampled_from(["👍", "🏽", "\u200d", "\ufe0f", "❤", "🇺", "🇸", "👨", "🏴", "\U000E0067", "⃣"])
marks = st.sampled_from(["\u0301", "\u0308", "\u0327", "\u05b7", "\u0651", "\u093f", "\u20dd"])
rtl = st.sampled_from(list("שלום مرحبا") + ["\u200f", "\u202e", "\u061f"])
controls = st.sampled_from(["\x00", "\x07", "\t", "\n", "\x85", "\u2028", "\u00a0", "\u3000", "\ufeff"])
ascii_bits = st.sampled_from(list("aZ09'-.,!? ") + ["’", "‐", "Σ", "İ", "ß", "ﬁ", "Ⅻ"])
mixed_text = st.lists(st.one_of(text_chars, emoji, marks, rtl, controls, ascii_bits),
                      max_size=60).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(st.one_of(st.text(text_chars, max_size=40), mixed_text), min_size=1,
                      max_size=16),
       lowercase=st.booleans())
def test_parity_hypothesis(tf_tokenizers, texts, lowercase):
    assert_parity(tf_tokenizers, texts, lowercase)


@settings(max_examples=20, deadline=None)
@given(word=st.text(st.characters(categories=("L", "M", "N")), min_size=1, max_size=5),
       repeat=st.integers(1_000, 50_000))
def test_parity_very_long_words(tf_tokenizers, word, repeat):
    assert_parity(tf_tokenizers, [word * repeat, ("x-" * repeat) + word])


@pytest.mark.corpus
@pytest.mark.parametrize("lowercase", [True, False])
def test_parity_every_corpus_sentence(tf_tokenizers, brown, nlp_corpus, lowercase):
    for corpus in (brown, nlp_corpus):
        sentences = [s for split in corpus.splits.values() for s in split]
        for start in range(0, len(sentences), 20_000):
            assert_parity(tf_tokenizers, sentences[start:start + 20_000], lowercase)


def test_tables_are_current():
    """The committed tables match what the generator derives (same ICU and Unicode data)."""
    from data_pipeline import make_unicode_tables as make

    tables = tokenization.unicode_tables()
    code_points = make.all_code_points()
    assert {int(k): v for k, v in make.icu_nfkc_table(code_points).items()} == tables["nfkc"]
    if unicodedata.unidata_version != "14.0.0":
        pytest.skip("class and lowercase tables were derived from Unicode 14.0 (Python 3.11)")
    assert {int(k): v for k, v in make.simple_lowercase_table(code_points).items()} == tables["lowercase"]
    ranges = make.category_ranges(code_points, make.PUNCTUATION_CATEGORIES)
    assert [tuple(r) for r in ranges] == tables["punctuation"]
