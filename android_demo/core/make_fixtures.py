"""Writes the data the Java core ships or is tested against, all derived from the Python side.

    python android_demo/core/make_fixtures.py          # (re)write the files below
    python android_demo/core/make_fixtures.py --check  # exit 1 if any is stale

Outputs (committed; tests/android/test_java_core.py checks they are current):

- ``src/main/resources/keyboardlm/core/unicode_tables.json``: a byte-identical copy of
  ``data_pipeline/unicode_tables.json`` (the spec's frozen tables).
- ``src/main/resources/keyboardlm/core/normalization.json``: the Unicode data of Python's
  own NFKC (spec step 1, "the runtime's own NFKC"): full compatibility decompositions,
  canonical combining classes and primary composites, from ``unicodedata`` (Unicode 14).
  Java's and Android's Normalizer use other Unicode versions (Android 7 has Unicode 8), so
  the Java port runs this data instead, and gives the Python twin's answer on every device.
- ``fixtures/tokenizer.json``: strings -> what the Python twin answers (tokens with and
  without lowercasing, normalize, lowercase, is_word, ends_with_space, token_spans in code
  points): the spec's examples, hand-picked edge cases, and seeded random strings built
  like the hypothesis strategies of tests/data_pipeline/test_tokenization.py; plus a
  digest of the tokens of every code point alone and between two letters.
"""
import hashlib
import json
import random
import sys
import unicodedata
from pathlib import Path

CORE = Path(__file__).resolve().parent
ROOT = CORE.parent.parent
sys.path.insert(0, str(ROOT))

from data_pipeline import tokenization  # noqa: E402
from data_pipeline.tokenization import TokenizerOptions  # noqa: E402

RESOURCES = CORE / "src/main/resources/keyboardlm/core"
TABLES_COPY = RESOURCES / "unicode_tables.json"
NORMALIZATION = RESOURCES / "normalization.json"
FIXTURE = CORE / "fixtures/tokenizer.json"
CASED = TokenizerOptions(lowercase=False)
BLOCK = 4096  # code points per digest entry
HANGUL = range(0xAC00, 0xD7A4)  # decomposed by the algorithm, not by a table

EXAMPLES = [  # tests/data_pipeline/test_tokenization.py, including what hypothesis found
    "Don't stop, it's well-known.", "Don’t", "pi is 3.14, not 1,000 or 2nd", "a--b ''c'' x-",
    "ﬁne Ⅻ ① ＡＢＣ", "I ❤️ it 👍🏽 👨\u200d👩\u200d👧 🇺🇸🇫🇷", "مرحبا بالعالم!", "e\u0301te\u0301",
    "tab\there\x00nul\u2028line", "", " \t\n ", "ΟΔΟΣ", "I saw Atlanta's Mayor",
    "Ok. See you at 3.15! Really? yes", "Wait．What", "don't panic",
]
EDGE_CASES = [
    # numbers, words and their joiners
    "3.", "v1.2", "1,2,3.4.5", "3..14", "1,,2", "x'", "'x", "x''y", "x-'y", "-x-", "don’t‐stop", "..!?",
    # emoji: modifiers, ZWJ chains, keycaps, tags, lone pieces, flags in odd numbers
    "👍🏽👍", "🏽", "a\u200db", "\u200d👍", "👍\u200d", "👨\u200d\u200d👩", "1\ufe0f\u20e3", "#\u20e3x",
    "🏴\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F", "🇺🇸🇫", "🇺", "x🇺🇸y", "❤\ufe0e❤\ufe0f",
    # combining marks: composition, canonical reordering, blocking, Hangul jamo
    "a\u0323\u0302", "a\u0302\u0323", "e\u0323\u0301", "é\u0323", "\u0301a", "a\u0301\u0301", "A\u030a\u0301",
    "\u0308\u0301", "\u0f71\u0f72", "\u1100\u1161\u11a8", "가\u11a8", "\u1100\u1161\u0301\u11a8", "한국어",
    "\u0915\u093c", "क़", "a\u1ac1\u0323", "a\u0898\u0301", "x\u0345\u0301", "ǖ", "u\u0308\u0304",
    # case: 1:1 table, title case, final sigma, dotted I, German sharp s, compatibility letters
    "İstanbul", "ǅemal", "ΣΑΣ", "STRASSE Straße ẞ", "ﬀ ﬃ ǈ", "Ⓐ", "µ", "ＡＢＣ", "𝐀𝐁𝐂",
    # right to left: marks, overrides, Arabic and Hebrew punctuation
    "\u202eabc\u202c", "\u200fשלום\u200f", "مرحبا؟", "שלום, עולם.", "\u061c", "ال\u0651\u064eس",
    # controls and every kind of space
    "\x00\x01\x1f\x7f\x85\x9f", "a\u00a0b\u1680c\u2000d\u200ae\u2028f\u2029g\u202fh\u205fi\u3000j",
    "\ufeffx", "x\u200by", "x\u180ey", "end ", "end\t", "end\x00", "end\u3000", "end\u200b",
    # lone surrogates (a str may hold them; Java strings too)
    "\ud800", "a\udc00b", "\udfff!", "x\ud83d y",
    # unassigned, private use, noncharacters, the last code point
    "\u0378x", "\ue000", "\U000F0000", "\uffff", "\U0010FFFF", "\U0001F000",
    # long words (a regex engine that recurses per repetition overflows its stack here)
    "x-" * 5_000 + "y", "a" * 10_000, "é" * 2_000, "👍🏽" * 500, "x\u200d" * 2_000,
]
EMOJI = ["👍", "🏽", "\u200d", "\ufe0f", "❤", "🇺", "🇸", "👨", "🏴", "\U000E0067", "⃣"]
MARKS = ["\u0301", "\u0308", "\u0327", "\u05b7", "\u0651", "\u093f", "\u20dd", "\u0323", "\u1ac1", "\u0345"]
RTL = list("שלום مرحبا") + ["\u200f", "\u202e", "\u061f"]
CONTROLS = ["\x00", "\x07", "\t", "\n", "\x85", "\u2028", "\u00a0", "\u3000", "\ufeff"]
ASCII_BITS = list("aZ09'-.,!? ") + ["’", "‐", "Σ", "İ", "ß", "ﬁ", "Ⅻ"]


def _random_char(rng):
    """Any code point (surrogates included), weighted toward the interesting planes."""
    kind = rng.random()
    if kind < 0.35:
        return chr(rng.randrange(0x20, 0x3000))
    if kind < 0.6:
        return chr(rng.randrange(0x3000, 0x10000))
    if kind < 0.8:
        return chr(rng.randrange(0x10000, 0x20000))
    return chr(rng.randrange(0, 0x110000))


def random_texts(count=1200, seed=20240607):
    rng = random.Random(seed)
    pools = [EMOJI, MARKS, RTL, CONTROLS, ASCII_BITS]
    texts = []
    for _ in range(count):
        if rng.random() < 0.3:  # like st.text(text_chars)
            pieces = [_random_char(rng) for _ in range(rng.randrange(0, 41))]
        else:  # like mixed_text
            pieces = [_random_char(rng) if rng.random() < 0.3 else rng.choice(rng.choice(pools))
                      for _ in range(rng.randrange(0, 61))]
        texts.append("".join(pieces))
    return texts


def _pairs_surrogates(text):
    """A high surrogate followed by a low one: Python sees two code points, Java one."""
    return any(0xD800 <= ord(a) <= 0xDBFF and 0xDC00 <= ord(b) <= 0xDFFF for a, b in zip(text, text[1:]))


def case(text):
    tokens = tokenization.tokenize(text)
    return {"text": text, "tokens": tokens, "cased": tokenization.tokenize(text, CASED),
            "normalized": tokenization.normalize(text), "lowercase": tokenization.lowercase(text),
            "is_word": [tokenization.is_word(t) for t in tokens], "text_is_word": tokenization.is_word(text),
            "ends_with_space": tokenization.ends_with_space(text),
            "spans": [list(s) for s in tokenization.token_spans(text)]}


def utf8_any(text):
    """UTF-8, with lone surrogates encoded like any other code point (Java does the same)."""
    return text.encode("utf-8", "surrogatepass")


def code_point_digests():
    """Per block of code points: sha256 (first 16 hex) of the tokens of c alone and of "A"+c+"b",
    lowercased and cased -- every code point, without a 100 MB fixture."""
    digests = []
    for start in range(0, 0x110000, BLOCK):
        entry = {"start": start}
        for template in ("{}", "A{}b"):
            for name, options in (("lower", TokenizerOptions()), ("cased", CASED)):
                digest = hashlib.sha256()
                for c in range(start, start + BLOCK):
                    digest.update(utf8_any("\x1f".join(tokenization.tokenize(template.format(chr(c)), options))))
                    digest.update(b"\n")
                entry[f"{template}|{name}"] = digest.hexdigest()[:16]
        digests.append(entry)
    return digests


def tokenizer_fixture():
    texts = EXAMPLES + EDGE_CASES + random_texts()
    cases = [case(t) for t in texts]
    cases = [c for c in cases if not any(_pairs_surrogates(s) for s in
                                         (c["text"], c["normalized"], c["lowercase"], *c["tokens"], *c["cased"]))]
    return {"spec_version": tokenization.SPEC_VERSION, "unicode_version": unicodedata.unidata_version,
            "cases": cases, "code_point_blocks": code_point_digests()}


def normalization_tables():
    """Python's NFKC data: decompositions (full, ordered), combining classes, composites."""
    decompositions, classes, composites = {}, [], []
    for cp in range(0x110000):
        ch = chr(cp)
        if cp not in HANGUL and unicodedata.normalize("NFKD", ch) != ch:
            decompositions[str(cp)] = [ord(c) for c in unicodedata.normalize("NFKD", ch)]
        ccc = unicodedata.combining(ch)
        if ccc and classes and classes[-1][1] == cp - 1 and classes[-1][2] == ccc:
            classes[-1][1] = cp
        elif ccc:
            classes.append([cp, cp, ccc])
        mapping = unicodedata.decomposition(ch)
        if cp not in HANGUL and mapping and not mapping.startswith("<") and len(mapping.split()) == 2:
            first, second = (int(x, 16) for x in mapping.split())
            if unicodedata.normalize("NFC", chr(first) + chr(second)) == ch:  # not excluded
                composites.append([first, second, cp])
    return {"unicode_version": unicodedata.unidata_version, "decompositions": decompositions,
            "combining_classes": classes, "composites": composites}


def _escape_surrogates(text):
    return "".join(f"\\u{ord(c):04x}" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


def dump_fixture(fixture):
    """One case per line, so diffs stay readable; UTF-8, lone surrogates as \\u escapes."""
    lines = [_escape_surrogates(json.dumps(c, sort_keys=True, ensure_ascii=False)) for c in fixture["cases"]]
    blocks = [json.dumps(b, sort_keys=True) for b in fixture["code_point_blocks"]]
    return ('{"spec_version": %d, "unicode_version": %s,\n"cases": [\n%s\n],\n"code_point_blocks": [\n%s\n]}\n'
            % (fixture["spec_version"], json.dumps(fixture["unicode_version"]), ",\n".join(lines), ",\n".join(blocks)))


def outputs():
    """{path: bytes} of every generated file."""
    return {TABLES_COPY: tokenization.TABLES_PATH.read_bytes(),
            NORMALIZATION: (json.dumps(normalization_tables(), sort_keys=True) + "\n").encode(),
            FIXTURE: dump_fixture(tokenizer_fixture()).encode()}


def stale():
    """Paths whose committed content differs from what this script writes now."""
    return [str(p.relative_to(ROOT)) for p, data in outputs().items() if not p.is_file() or p.read_bytes() != data]


def main(argv):
    if unicodedata.unidata_version != "14.0.0":
        sys.exit(f"this Python has Unicode {unicodedata.unidata_version}; the tables are Unicode 14.0 (Python 3.11)")
    if "--check" in argv:
        paths = stale()
        print("stale: " + ", ".join(paths) if paths else "all current")
        return 1 if paths else 0
    for path, data in outputs().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"wrote {path.relative_to(ROOT)} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
