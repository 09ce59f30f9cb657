"""The tokenization spec (version 1) and its pure-Python implementation.

This module is the TF-free twin of ``data_pipeline.tf_tokenization``: the phone
harness uses it, the Android app ports it to Java, and parity tests hold the two
implementations to identical output. docs/tokenization.md states the spec in
prose; every Unicode-version-dependent choice is frozen in ``unicode_tables.json``.

The five steps, applied to a str:

1. NFKC: each code point found in the ``nfkc`` table is replaced by its entry,
   then the runtime's own NFKC runs (it now only composes; see the docs).
2. Apostrophe and hyphen: U+2019 -> ``'`` and U+2010 -> ``-``.
3. Lowercase (option, on by default): each code point in the ``lowercase`` table
   is replaced by its 1:1 entry (no context rules: final sigma stays σ).
4. Whitespace: every White_Space or control (Cc) code point becomes U+0020.
5. Tokens: the leftmost-first matches of ``token_pattern()``, in order:
   a flag (two regional indicators) | a number with separators ("3.14", "1,000")
   | a word (word characters joined by single in-word ``'`` or ``-``) | one
   punctuation/symbol character with its emoji modifiers and ZWJ continuations.
   A word character is any code point that is neither whitespace nor in the
   ``punctuation`` ranges (general categories P* and S*).
"""
import dataclasses
import functools
import json
import re
import unicodedata
from pathlib import Path

SPEC_VERSION = 1
TABLES_PATH = Path(__file__).with_name("unicode_tables.json")

# White_Space (Unicode's stable property) plus every control character (Cc).
WHITESPACE_RANGES = ((0x0000, 0x0020), (0x007F, 0x00A0), (0x1680, 0x1680), (0x2000, 0x200A),
                     (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000))
# Code points that continue a symbol token: variation selectors, combining keycap,
# skin-tone modifiers and tag characters (emoji modifiers, never tokens of their own).
SYMBOL_CONTINUATION_RANGES = ((0xFE0E, 0xFE0F), (0x20E3, 0x20E3), (0x1F3FB, 0x1F3FF),
                              (0xE0020, 0xE007F))
REGIONAL_INDICATOR_RANGE = ((0x1F1E6, 0x1F1FF),)
ZERO_WIDTH_JOINER = 0x200D
CHARACTER_REPLACEMENTS = {0x2019: "'", 0x2010: "-"}
SENTENCE_ENDS = frozenset({".", "!", "?"})  # tokens that close a sentence (<eos> <bos> follow)


@dataclasses.dataclass(frozen=True)
class TokenizerOptions:
    """Options of the spec; stored in every vocabulary and bundle."""

    lowercase: bool = True  # fold case with the 1:1 table (the keyboard re-capitalises)

    def to_json(self):
        return {"spec_version": SPEC_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, data, source="tokenizer options"):
        from data_pipeline.errors import KblmError

        version = data.get("spec_version")
        if version != SPEC_VERSION:
            raise KblmError(f"{source}: tokenizer spec_version {version!r} is not supported by "
                            f"this keyboard-lm (spec version {SPEC_VERSION}); rebuild it")
        unknown = set(data) - {"spec_version"} - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise KblmError(f"{source}: unknown tokenizer option(s) {sorted(unknown)}")
        return cls(**{k: v for k, v in data.items() if k != "spec_version"})


@functools.cache
def unicode_tables():
    """The frozen tables: {'nfkc': {cp: str}, 'lowercase': {cp: cp}, 'punctuation': [[lo, hi]]}."""
    raw = json.loads(TABLES_PATH.read_text(encoding="utf-8"))
    return {
        "nfkc": {int(k): v for k, v in raw["nfkc"].items()},
        "lowercase": {int(k): v for k, v in raw["lowercase"].items()},
        "punctuation": [tuple(r) for r in raw["punctuation"]],
    }


def _python_escape(code_point):
    return f"\\U{code_point:08X}"


def re2_escape(code_point):
    return f"\\x{{{code_point:X}}}"


def character_class(ranges, escape, negate=False):
    """A regex character class of code point ranges, written the same for both engines."""
    body = "".join(escape(lo) if lo == hi else f"{escape(lo)}-{escape(hi)}" for lo, hi in ranges)
    return f"[{'^' if negate else ''}{body}]"


def whitespace_class(escape):
    return character_class(WHITESPACE_RANGES, escape)


def token_pattern(escape):
    """The token regex; ``escape`` renders a code point for Python ``re`` or RE2."""
    punctuation = unicode_tables()["punctuation"]
    punct = character_class(punctuation, escape)
    word = character_class(sorted(list(WHITESPACE_RANGES) + list(punctuation)), escape, negate=True)
    flag = character_class(REGIONAL_INDICATOR_RANGE, escape) + "{2}"
    continuation = character_class(SYMBOL_CONTINUATION_RANGES, escape)
    zwj = escape(ZERO_WIDTH_JOINER)
    return "|".join([
        flag,
        r"[0-9]+(?:[.,][0-9]+)+",
        f"{word}+(?:['\\-]{word}+)*",
        f"{punct}(?:{continuation}|{zwj}{punct})*",
    ])


@functools.cache
def _compiled():
    tables = unicode_tables()
    nfkc = {cp: s for cp, s in tables["nfkc"].items()}
    replacements = dict(CHARACTER_REPLACEMENTS)
    word = character_class(sorted(list(WHITESPACE_RANGES) + tables["punctuation"]), _python_escape, negate=True)
    return {
        "nfkc": nfkc,
        "replacements": replacements,
        "lowercase": tables["lowercase"],
        "whitespace": re.compile(whitespace_class(_python_escape)),
        "token": re.compile(token_pattern(_python_escape)),
        "word_start": re.compile(word),
    }


def normalize(text, options=TokenizerOptions()):
    """Steps 1-4 of the spec: the text the token regex runs on."""
    c = _compiled()
    text = unicodedata.normalize("NFKC", text.translate(c["nfkc"]))
    text = text.translate(c["replacements"])
    if options.lowercase:
        text = text.translate(c["lowercase"])
    return c["whitespace"].sub(" ", text)


def is_word(token):
    """True if ``token`` is a word or number (starts with a word character), not punctuation."""
    return bool(token) and _compiled()["word_start"].match(token) is not None


def ends_with_space(text):
    """True if ``text`` ends with whitespace or a control character (step 4's set)."""
    return bool(text) and _compiled()["whitespace"].fullmatch(text[-1]) is not None


def lowercase(text):
    """Step 3 alone: the spec's 1:1 lowercase map (for case-insensitive prefix matching)."""
    return text.translate(_compiled()["lowercase"])


def token_spans(text):
    """(start, end) of each token in ``text`` itself, by the token regex without NFKC or
    lowercasing (the 1:1 apostrophe/hyphen replacements apply, so spans line up)."""
    return [m.span() for m in _compiled()["token"].finditer(text.translate(_compiled()["replacements"]))]


def split_sentences(text):
    """The sentences of a message: cut after every token that normalizes to . ! or ?

    Training, export scoring and the keyboard engine all frame text this way, so a model
    always sees a sentence as <bos> ... <eos>. (Abbreviations such as "Mr." end a
    sentence too: the rule is simple on purpose, and the same everywhere.)
    """
    sentences, start = [], 0
    for begin, end in token_spans(text):
        if unicodedata.normalize("NFKC", text[begin:end]) in SENTENCE_ENDS:
            sentences.append(text[start:end].strip())
            start = end
    sentences.append(text[start:].strip())
    return [s for s in sentences if s]


def tokenize(text, options=TokenizerOptions()):
    """Splits one str into tokens by the spec. Pure Python; never raises on any str."""
    return _compiled()["token"].findall(normalize(text, options))
