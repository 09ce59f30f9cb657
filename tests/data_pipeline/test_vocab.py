"""The vocabulary: order, caps, rules, round trip, and refusal of bad files."""
import collections
import json

import pytest

from data_pipeline import corpora
from data_pipeline.errors import KblmError
from data_pipeline.tokenization import TokenizerOptions
from data_pipeline.vocab import (SPECIAL_TOKENS, UNK_ID, Vocabulary, VocabularyOptions,
                                 build_vocabulary)


def make_corpus(train, valid=("valid only words",), test=("zebra",)):
    return corpora.Corpus("t", "test", {"train": list(train), "valid": list(valid),
                                        "test": list(test)})


def test_order_is_count_then_token_and_specials_fixed():
    corpus = make_corpus(["b a c", "a b", "a d"])
    vocab = build_vocabulary(corpus, VocabularyOptions(max_size=None), progress=False)
    assert vocab.tokens == list(SPECIAL_TOKENS) + ["a", "b", "c", "d"]
    assert vocab.id("zebra") == UNK_ID and vocab.encode("a zebra") == [4, UNK_ID]


def test_train_split_only_cap_and_min_count():
    corpus = make_corpus(["x x x y y z"], valid=["w w w w w w"])
    vocab = build_vocabulary(corpus, VocabularyOptions(max_size=6), progress=False)
    assert vocab.tokens[4:] == ["x", "y"]
    vocab = build_vocabulary(corpus, VocabularyOptions(max_size=None, min_count=2), progress=False)
    assert vocab.tokens[4:] == ["x", "y"] and "w" not in vocab.tokens
    assert vocab.metadata["coverage"]["train"] == pytest.approx(5 / 6)
    assert vocab.metadata["coverage"]["valid"] == 0.0


def test_bengio_rule_counts_the_whole_corpus():
    corpus = make_corpus(["a a a a b b"], valid=["b b"], test=["c c c c"])
    vocab = build_vocabulary(corpus, VocabularyOptions.bengio(), progress=False)
    assert vocab.tokens[4:] == ["a", "b", "c"]


@pytest.mark.corpus
def test_brown_vocabularies(brown):
    bengio = build_vocabulary(brown, VocabularyOptions.bengio(), TokenizerOptions(lowercase=False),
                              progress=False)
    assert len(bengio) == 17_844  # the "about 17.9k"
    default = build_vocabulary(brown, progress=False)
    assert len(default) == 10_000 and default.tokens[4:8] == ["the", ",", ".", "of"]
    again = build_vocabulary(brown, progress=False)
    assert again.tokens == default.tokens


def test_round_trip(tmp_path, toy_vocab):
    toy_vocab.save(tmp_path / "v")
    loaded = Vocabulary.load(tmp_path / "v")
    assert loaded.tokens == toy_vocab.tokens
    assert loaded.tokenizer_options == toy_vocab.tokenizer_options
    meta = json.loads((tmp_path / "v" / "vocab.json").read_text())
    assert meta["special_ids"] == {"<pad>": 0, "<unk>": 1, "<bos>": 2, "<eos>": 3}
    assert meta["tokenizer"] == {"spec_version": 1, "lowercase": True}
    assert not [p for p in (tmp_path / "v").iterdir() if p.name.startswith(".")]


def _edit_json(path, **changes):
    meta = json.loads(path.read_text())
    for key, value in changes.items():
        if isinstance(value, dict):
            meta[key].update(value)
        else:
            meta[key] = value
    path.write_text(json.dumps(meta))


def _rewrite_consistently(directory, edit):
    """Edits vocab.txt and updates the checksum, as a careless hand edit with a rehash would."""
    import hashlib

    text = edit((directory / "vocab.txt").read_text(encoding="utf-8"))
    (directory / "vocab.txt").write_text(text, encoding="utf-8")
    _edit_json(directory / "vocab.json", sha256=hashlib.sha256(text.encode()).hexdigest())


@pytest.mark.parametrize("damage, match", [
    (lambda d: (d / "vocab.txt").write_text("<pad>\n<unk>\n<bos>\n<eos>\nsee\n"), "sha256 does not match"),
    (lambda d: _edit_json(d / "vocab.json", tokenizer={"spec_version": 0}), r"tokenizer.spec_version is 0"),
    (lambda d: _edit_json(d / "vocab.json", format_version=9), "format_version 9"),
    (lambda d: (d / "vocab.json").write_text("{not json"), "not valid JSON"),
    (lambda d: (d / "vocab.txt").unlink(), r"vocab.txt: missing"),
    (lambda d: _rewrite_consistently(d, lambda text: text.rstrip("\n")), "last line has no newline"),
])
def test_load_refuses_bad_vocabularies(tmp_path, toy_vocab, damage, match):
    toy_vocab.save(tmp_path / "v")
    damage(tmp_path / "v")
    with pytest.raises(KblmError, match=match):
        Vocabulary.load(tmp_path / "v")


def test_bad_options():
    with pytest.raises(KblmError, match="rule must be one of"):
        VocabularyOptions(rule="bigram")
    with pytest.raises(KblmError, match="max_size must exceed 4"):
        VocabularyOptions(max_size=3)


def test_empty_train_split():
    with pytest.raises(KblmError, match="train split has no tokens"):
        build_vocabulary(make_corpus(["\x00 \t"]), progress=False)


def test_encode_matches_counts(toy_corpus, toy_vocab):
    ids = collections.Counter(i for m in toy_corpus.splits["train"] for i in toy_vocab.encode(m))
    assert ids[UNK_ID] == 0
