"""Regenerates ``unicode_tables.json``, the character tables of the tokenization spec.

Input: tensorflow-text's ICU (for NFKC) and this Python's ``unicodedata`` (for the
character classes and the lowercase map). Output: ``data_pipeline/unicode_tables.json``.

The tables freeze every Unicode-version-dependent decision of the spec, so the
tf-text pipeline, the pure-Python twin and the Java port agree on any runtime:

- ``nfkc``: code point -> ICU's NFKC of that single code point, for every code point
  that ICU changes. Runtimes apply it before their own NFKC, which then only has
  to compose old characters (see docs/tokenization.md).
- ``lowercase``: code point -> code point, the simple (1:1) lowercase mapping.
- ``punctuation``: ranges of general categories P* and S* (punctuation, symbols).

Run: ``python -m data_pipeline.make_unicode_tables`` (needs TensorFlow).
"""
import json
import sys
import unicodedata
from pathlib import Path

from data_pipeline.textio import atomic_write_text

TABLES_PATH = Path(__file__).with_name("unicode_tables.json")
PUNCTUATION_CATEGORIES = ("Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So")


def all_code_points():
    """Every Unicode scalar value (surrogates are not text)."""
    return [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]


def icu_nfkc_table(code_points):
    import tensorflow as tf
    import tensorflow_text as tf_text

    chars = [chr(c) for c in code_points]
    normalized = tf_text.normalize_utf8(tf.constant([c.encode() for c in chars]), "NFKC")
    return {
        str(c): out.decode()
        for c, ch, out in zip(code_points, chars, normalized.numpy())
        if out.decode() != ch
    }


def simple_lowercase_table(code_points):
    table = {}
    for c in code_points:
        lowered = chr(c).lower()
        if len(lowered) != 1:  # only U+0130; its simple mapping (UnicodeData.txt) is 'i'
            lowered = lowered[0]
        if lowered != chr(c):
            table[str(c)] = ord(lowered)
    return table


def category_ranges(code_points, categories):
    ranges = []
    for c in code_points:
        if unicodedata.category(chr(c)) in categories:
            if ranges and ranges[-1][1] == c - 1:
                ranges[-1][1] = c
            else:
                ranges.append([c, c])
    return ranges


def build_tables():
    code_points = all_code_points()
    return {
        "unicode_version_of_classes": unicodedata.unidata_version,
        "nfkc": icu_nfkc_table(code_points),
        "lowercase": simple_lowercase_table(code_points),
        "punctuation": category_ranges(code_points, PUNCTUATION_CATEGORIES),
    }


def main():
    tables = build_tables()
    atomic_write_text(TABLES_PATH, json.dumps(tables, ensure_ascii=True, sort_keys=True) + "\n")
    print(f"wrote {TABLES_PATH}: {len(tables['nfkc'])} nfkc, {len(tables['lowercase'])} "
          f"lowercase, {len(tables['punctuation'])} punctuation ranges", file=sys.stderr)


if __name__ == "__main__":
    main()
