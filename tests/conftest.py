"""Shared fixtures: real corpora (fetched once into the user cache) and toy data."""
import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from data_pipeline import corpora  # noqa: E402
from data_pipeline.tokenization import TokenizerOptions  # noqa: E402
from data_pipeline.vocab import VocabularyOptions, build_vocabulary  # noqa: E402

TOY_MESSAGES = [
    "see you soon",
    "see you tomorrow at the station",
    "don't be late, it's well-known that the train leaves at 3.15!",
    "I will see you at the station tomorrow",
    "the train is late again",
    "ok 👍🏽 see you",
]


@pytest.fixture(scope="session")
def brown():
    return corpora.load_corpus("brown")


@pytest.fixture(scope="session")
def nlp_corpus():
    return corpora.load_corpus("nlp-corpus")


@pytest.fixture(scope="session")
def toy_corpus():
    return corpora.Corpus("toy", "test", {"train": TOY_MESSAGES * 3, "valid": TOY_MESSAGES[:2],
                                          "test": TOY_MESSAGES[2:4]})


@pytest.fixture(scope="session")
def toy_vocab(toy_corpus):
    return build_vocabulary(toy_corpus, VocabularyOptions(max_size=None), TokenizerOptions(),
                            progress=False)


@pytest.fixture(scope="session")
def brown_vocab(brown):
    return build_vocabulary(brown, progress=False)
