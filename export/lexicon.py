"""The bundle's lexicon at export time: every word of the run's training text outside the
vocabulary, with its count, in the case it is most often written in; optionally merged
with a general frequency list from the ``wordfreq`` package (imported here only; the phone
side reads the file with ``keyboard_lm.phone.lexicon``).

    --lexicon train            the training text's words (the default)
    --lexicon wordfreq:LANG    plus wordfreq's list for LANG (e.g. en)
    --lexicon none             no lexicon (the bundle behaves as before lexicons)
    --lexicon-size N           keep the N most frequent words (default: all of the training
                               text's; wordfreq's list is read to 100,000 words)

Merging: a wordfreq word's count is its frequency times the training text's token count,
rounded, at least 1; a word in both keeps the larger count and the training text's case.
"""
import collections
import dataclasses

from data_pipeline import tokenization
from data_pipeline.errors import KblmError
from data_pipeline.vocab import UNK_ID
from keyboard_lm.phone.lexicon import FORMAT_VERSION, encode, key_function, learnable, vocabulary_form

DEFAULT_WORDFREQ_SIZE = 100_000


def parse_source(text):
    """``train`` | ``none`` | ``wordfreq:LANG`` -> (kind, language)."""
    if text in ("train", "none"):
        return text, None
    kind, colon, language = text.partition(":")
    if kind == "wordfreq" and colon and language:
        return kind, language
    raise KblmError(f"--lexicon: expected train, none or wordfreq:LANG (e.g. wordfreq:en), got {text!r}")


def training_words(messages, vocab):
    """{key: [count, {written form: count}]} of the words outside the vocabulary, and the
    training text's token count."""
    cased = dataclasses.replace(vocab.tokenizer_options, lowercase=False)
    key = key_function(vocab.tokenizer_options)
    words = {}
    tokens = 0
    for message in messages:
        for token in tokenization.tokenize(message, cased):
            tokens += 1
            k = key(token)
            if vocab.id(vocabulary_form(token, vocab.tokenizer_options)) != UNK_ID or not tokenization.is_word(token) or not learnable(token):
                continue
            entry = words.get(k)
            if entry is None:
                entry = words[k] = [0, collections.Counter()]
            entry[0] += 1
            entry[1][token] += 1
    return words, tokens


def wordfreq_words(language, size, vocab):
    """[(word, frequency)] of wordfreq's list for ``language`` (its most frequent ``size``
    words that tokenize as one word outside the vocabulary)."""
    try:
        import wordfreq
    except ImportError:
        raise KblmError("--lexicon wordfreq: the wordfreq package is not installed "
                        "(pip install 'keyboard-lm[lexicon]' or pip install wordfreq)") from None
    try:
        listed = wordfreq.top_n_list(language, size * 2, wordlist="best")
    except (LookupError, ValueError) as e:
        raise KblmError(f"--lexicon wordfreq:{language}: wordfreq has no list for it ({e})") from None
    if not listed:
        raise KblmError(f"--lexicon wordfreq:{language}: wordfreq has no words for that language")
    key = key_function(vocab.tokenizer_options)
    options = vocab.tokenizer_options
    result = []
    for word in listed:
        tokens = tokenization.tokenize(word, options)
        if len(tokens) != 1 or not tokenization.is_word(tokens[0]) or not learnable(word) or \
                vocab.id(tokens[0]) != UNK_ID:
            continue
        result.append((word, wordfreq.word_frequency(word, language, wordlist="best")))
        if len(result) == size:
            break
    return result


def build_lexicon(messages, vocab, source="train", size=None):
    """[(word, count)] sorted by key (the file's order), or [] for ``--lexicon none``."""
    kind, language = parse_source(source)
    if kind == "none":
        return []
    words, tokens = training_words(messages, vocab)
    key = key_function(vocab.tokenizer_options)
    # the most frequent form; equal counts: the smaller string (code point order)
    merged = {k: [count, min(forms.items(), key=lambda f: (-f[1], f[0]))[0]] for k, (count, forms) in words.items()}
    if kind == "wordfreq":
        for word, frequency in wordfreq_words(language, size or DEFAULT_WORDFREQ_SIZE, vocab):
            count = max(1, round(frequency * tokens))
            entry = merged.get(key(word))
            if entry is None:
                merged[key(word)] = [count, word]
            elif count > entry[0]:
                entry[0] = count
    ranked = sorted(merged.items(), key=lambda item: (-item[1][0], item[0]))
    if size is not None:
        ranked = ranked[:size]
    return [(form, count) for _, (count, form) in sorted(ranked)]


def lexicon_file(entries, sources):
    """(the file's bytes, the manifest's lexicon block), or (None, None) for no words."""
    if not entries:
        return None, None
    return encode(entries), {"format_version": FORMAT_VERSION, "words": len(entries), "sources": list(sources)}


def add_to_bundle(directory, entries, sources=("train",)):
    """Writes a lexicon of ``entries`` ([(word, count)], any order) into an exported bundle
    directory and records it in its manifest (tests and benchmarks compare one model with
    and without a lexicon)."""
    import json
    from pathlib import Path

    from keyboard_lm.phone.bundle import sha256
    from keyboard_lm.phone.lexicon import FILE

    directory = Path(directory)
    entries = sorted(entries, key=lambda entry: key_function()(entry[0]))
    data, block = lexicon_file(entries, sources)
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    (directory / FILE).write_bytes(data)
    manifest["lexicon"] = block
    manifest["files"][FILE] = {"sha256": sha256(directory / FILE), "bytes": len(data)}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
