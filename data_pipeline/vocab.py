"""The vocabulary: built from the train split only, saved as text + JSON, validated on load.

Input: a Corpus and the tokenizer options. Output: ``vocab.txt`` (one token per
line, line number = id) and ``vocab.json`` (spec version, options, special ids,
counts, coverage, sha256 of vocab.txt). The JSON is the one source of truth for
special ids and tokenizer options, read by training, export, harness and app.
Plain Python, no TensorFlow.
"""
import collections
import dataclasses
import hashlib
import json
from pathlib import Path

from data_pipeline.progress import progress as tqdm

from data_pipeline.errors import KblmError
from data_pipeline.textio import atomic_write_text
from data_pipeline.tokenization import SPEC_VERSION, TokenizerOptions, tokenize

FORMAT_VERSION = 1
SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")  # ids 0, 1, 2, 3
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)
RULES = ("train", "bengio")


@dataclasses.dataclass(frozen=True)
class VocabularyOptions:
    """How the word list is chosen."""

    max_size: int | None = 10_000  # cap, specials included; None = no cap
    min_count: int = 1  # drop tokens seen fewer times in the counted text
    # "train": count the train split only. "bengio": Bengio et al. 2003's rule -- tokens
    # seen <= 3 times in the whole corpus become <unk>, no size cap (the paper's protocol;
    # it looks at word counts of valid/test, never at their order).
    rule: str = "train"

    def __post_init__(self):
        if self.rule not in RULES:
            raise KblmError(f"vocabulary rule must be one of {list(RULES)}; got {self.rule!r}")
        if self.max_size is not None and self.max_size <= len(SPECIAL_TOKENS):
            raise KblmError(f"vocabulary max_size must exceed {len(SPECIAL_TOKENS)}; got {self.max_size}")
        if self.min_count < 1:
            raise KblmError(f"vocabulary min_count must be >= 1; got {self.min_count}")

    @classmethod
    def bengio(cls):
        return cls(max_size=None, min_count=4, rule="bengio")


def count_tokens(messages, tokenizer_options, desc=None):
    """Token counts and per-message token lengths of ``messages`` (pure-Python tokenizer)."""
    counts = collections.Counter()
    lengths = []
    for message in tqdm(messages, desc=desc, unit=" msg", disable=desc is None, mininterval=1):
        tokens = tokenize(message, tokenizer_options)
        counts.update(tokens)
        lengths.append(len(tokens))
    return counts, lengths


def count_splits(corpus, tokenizer_options, progress=True):
    """{split: (Counter of tokens, [tokens per message])} for every split of ``corpus``."""
    return {split: count_tokens(messages, tokenizer_options,
                                desc=f"tokenizing {corpus.name} {split}" if progress else None)
            for split, messages in corpus.splits.items()}


class Vocabulary:
    """Token <-> id; ids 0-3 are <pad>, <unk>, <bos>, <eos>."""

    def __init__(self, tokens, metadata):
        self.tokens = list(tokens)
        self.metadata = metadata
        self.tokenizer_options = TokenizerOptions.from_json(metadata["tokenizer"])
        self._ids = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self):
        return len(self.tokens)

    def id(self, token):
        return self._ids.get(token, UNK_ID)

    def encode(self, text):
        """One message -> ids (no <bos>/<eos>), by the pure-Python tokenizer."""
        return [self.id(t) for t in tokenize(text, self.tokenizer_options)]

    def coverage(self, counts):
        total = sum(counts.values())
        known = sum(c for t, c in counts.items() if t in self._ids)
        return known / total if total else 0.0

    def save(self, directory):
        """Writes vocab.txt and vocab.json into ``directory`` (each atomically)."""
        directory = Path(directory)
        text = "\n".join(self.tokens) + "\n"
        metadata = dict(self.metadata, size=len(self.tokens),
                        sha256=hashlib.sha256(text.encode()).hexdigest())
        atomic_write_text(directory / "vocab.txt", text)
        atomic_write_text(directory / "vocab.json", json.dumps(metadata, indent=2) + "\n")
        self.metadata = metadata

    @classmethod
    def load(cls, directory):
        """Reads and validates a saved vocabulary; any mismatch is a one-line KblmError."""
        directory = Path(directory)
        meta_path, text_path = directory / "vocab.json", directory / "vocab.txt"
        for path in (meta_path, text_path):
            if not path.is_file():
                raise KblmError(f"{path}: missing (a vocabulary directory holds vocab.txt and vocab.json)")
        try:
            metadata = json.loads(meta_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise KblmError(f"{meta_path}: not valid JSON ({e})") from None
        if metadata.get("format_version") != FORMAT_VERSION:
            raise KblmError(f"{meta_path}: format_version {metadata.get('format_version')!r}, "
                            f"expected {FORMAT_VERSION}")
        spec = metadata.get("tokenizer", {}).get("spec_version")
        if spec != SPEC_VERSION:
            raise KblmError(f"{meta_path}: field tokenizer.spec_version is {spec!r}, but this "
                            f"keyboard-lm tokenizes by spec {SPEC_VERSION}; rebuild the vocabulary")
        data = text_path.read_bytes()
        if hashlib.sha256(data).hexdigest() != metadata.get("sha256"):
            raise KblmError(f"{text_path}: sha256 does not match field sha256 of {meta_path.name} "
                            "(edited or corrupt)")
        if data and not data.endswith(b"\n"):
            raise KblmError(f"{text_path}: the last line has no newline (one token per line, each ending in \\n)")
        tokens = data.decode("utf-8").split("\n")[:-1]
        if tuple(tokens[:len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise KblmError(f"{text_path}: the first lines must be {list(SPECIAL_TOKENS)}")
        if metadata.get("special_ids") != dict(zip(SPECIAL_TOKENS, range(4))):
            raise KblmError(f"{meta_path}: field special_ids must be {dict(zip(SPECIAL_TOKENS, range(4)))}")
        if len(tokens) != metadata.get("size") or len(set(tokens)) != len(tokens):
            raise KblmError(f"{text_path}: {len(tokens)} lines, {len(set(tokens))} distinct, but "
                            f"field size of {meta_path.name} is {metadata.get('size')}")
        return cls(tokens, metadata)


def build_vocabulary(corpus, options=VocabularyOptions(), tokenizer_options=TokenizerOptions(),
                     split_counts=None, progress=True):
    """Counts tokens (or takes ``count_splits`` output), keeps the most frequent (count desc,
    then token), records coverage of every split. Returns the Vocabulary."""
    if split_counts is None:
        split_counts = count_splits(corpus, tokenizer_options, progress)
    counts = {split: c for split, (c, _) in split_counts.items()}
    counted = counts["train"] if options.rule == "train" else sum(counts.values(), collections.Counter())
    if not counts["train"]:
        raise KblmError(f"corpus {corpus.name}: the train split has no tokens")
    ranked = sorted((t for t, c in counted.items() if c >= options.min_count),
                    key=lambda t: (-counted[t], t))
    if options.max_size is not None:
        ranked = ranked[:options.max_size - len(SPECIAL_TOKENS)]
    metadata = {
        "format_version": FORMAT_VERSION,
        "tokenizer": tokenizer_options.to_json(),
        "special_ids": dict(zip(SPECIAL_TOKENS, range(4))),
        "options": dataclasses.asdict(options),
        "corpus": {"name": corpus.name, "source": corpus.source},
        "counted_tokens": sum(counted.values()),
        "counted_types": len(counted),
        "size": len(SPECIAL_TOKENS) + len(ranked),
    }
    vocab = Vocabulary(list(SPECIAL_TOKENS) + ranked, metadata)
    metadata["coverage"] = {s: round(vocab.coverage(c), 6) for s, c in counts.items()}
    return vocab
