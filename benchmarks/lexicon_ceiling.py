"""How many keystrokes could a lexicon save at most? The ceiling behind the keystroke-savings table.

On the same text as benchmarks/keystroke_savings.py (the first 300 test sentences) and with the
same vocabularies (Brown: Bengio et al.'s rule, case kept; nlp-corpus: the default 10,000
words), it counts the words the strip can never show without a lexicon (outside the
vocabulary), those still out of reach with the training-text lexicon and with wordfreq's
100,000 words added (a hyphenated word whose parts are all in the vocabulary or the lexicon is
in reach: the strip completes compounds, docs/engine.md §4.1), and what is left among them:
numbers, hyphenated words with a part out of reach, others. The
two ceilings are an oracle's: every word outside the vocabulary offered and tapped before its
first letter (one tap instead of the whole word and its space: no lexicon can save more), or
once its first letter is typed (the most a completion can save).

Run: ``python benchmarks/lexicon_ceiling.py`` (about two minutes; needs ``wordfreq``, the
``lexicon`` extra). Writes benchmarks/results/lexicon_ceiling.{json,md}.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.common import write_results  # noqa: E402

SENTENCES = 300  # benchmarks/keystroke_savings.py's
WORDFREQ_WORDS = 100_000


def vocabulary(corpus_name, corpus):
    """The vocabulary benchmarks/cells.py trains the keystroke table's models with."""
    from benchmarks.cells import corpus_spec
    from data_pipeline.vocab import build_vocabulary

    spec = corpus_spec(corpus_name)
    return build_vocabulary(corpus, spec["vocab"], spec["tokenizer"], progress=False)


def kind(word):
    if any(c.isdigit() for c in word):
        return "numbers"
    return "hyphenated" if "-" in word else "other"


def measure(corpus_name):
    from data_pipeline import tokenization
    from data_pipeline.corpora import load_corpus
    from data_pipeline.vocab import UNK_ID
    from export.lexicon import build_lexicon, key_function
    from keyboard_lm.phone.keyboard import reachable_token

    corpus = load_corpus(corpus_name)
    vocab = vocabulary(corpus_name, corpus)
    options = vocab.tokenizer_options
    key = key_function(options)
    lexicons = {source: {key(word) for word, _ in build_lexicon(corpus.splits["train"], vocab, source, size)}
                for source, size in (("train", None), ("wordfreq:en", WORDFREQ_WORDS))}
    text = corpus.splits["test"][:SENTENCES]
    characters = sum(len(message) for message in text)
    words, outside, saved = 0, [], [0, 0]  # keystrokes an oracle saves after 0 and after 1 letter
    for message in text:
        for start, end in tokenization.token_spans(message):
            word = message[start:end]
            if not tokenization.is_word(word):
                continue
            words += 1
            tokens = tokenization.tokenize(word, options)
            if len(tokens) == 1 and vocab.id(tokens[0]) != UNK_ID:
                continue
            outside.append(word)
            space = message[end:end + 1] == " "
            for letters in (0, 1):
                saved[letters] += max(0, len(word) + space - letters - 1)
    def reachable(word, keys):  # a lexicon word, or a compound of reachable parts (docs/engine.md §4.1)
        tokens = tokenization.tokenize(word, options)
        return len(tokens) == 1 and reachable_token(tokens[0], lambda part: vocab.id(part) != UNK_ID or
                                                    key(part) in keys)

    left = {source: [w for w in outside if not reachable(w, keys)] for source, keys in lexicons.items()}
    last = left["wordfreq:en"]
    row = {"text": f"{corpus_name} test, first {SENTENCES}", "words": words,
           "outside": 100 * len(outside) / words,
           "left_train": 100 * len(left["train"]) / words, "left_wordfreq": 100 * len(last) / words,
           "ceiling": 100 * saved[0] / characters, "ceiling_completion": 100 * saved[1] / characters}
    for name in ("numbers", "hyphenated", "other"):
        row[f"left_{name}"] = 100 * sum(kind(w) == name for w in last) / words
    return row


def main():
    rows = [measure(name) for name in ("brown", "nlp-corpus")]
    print(write_results("lexicon_ceiling", rows, [
        ("text", "text"), ("words", "words"),
        ("outside", "outside the vocabulary %"), ("left_train", "not in the training-text lexicon %"),
        ("left_wordfreq", f"nor in wordfreq's {WORDFREQ_WORDS:,} %"),
        ("left_numbers", "of which numbers %"), ("left_hyphenated", "hyphenated, a part out of reach %"),
        ("left_other", "other %"),
        ("ceiling", "KSR gain ceiling of any lexicon (points)"),
        ("ceiling_completion", "of completions from the first letter (points)")]))


if __name__ == "__main__":
    main()
