"""Shared fixtures: real corpora (fetched once into the user cache) and toy data."""
import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if "PYTEST_XDIST_WORKER" in os.environ:  # one worker per core: one TensorFlow thread each (and in
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")  # the subprocesses), not cores x cores

import keyboard_lm  # noqa: E402,F401  (before TensorFlow loads: the CPU kernels kblm runs with)
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


KEYBOARD_SENTENCES = [
    "see you at the station tomorrow .", "see you at the park tonight !", "i will call you tomorrow .",
    "the train is late again .", "i think the train is late .", "see you soon .",
    "don't be late for the train .", "we met at the station .", "are you at the station ?",
]


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory):
    """A small LSTM run trained on a toy corpus of keyboard sentences (real training)."""
    import numpy as np

    from keyboard_lm.training.train import train

    root = tmp_path_factory.mktemp("toy_run")
    rng = np.random.default_rng(0)
    corpus = root / "messages.txt"
    corpus.write_text("\n".join(KEYBOARD_SENTENCES[i] for i in rng.integers(0, len(KEYBOARD_SENTENCES), 3000)) + "\n")
    train(root / "run", str(corpus), "tiny", {"embedding_dim": 16, "rnn_units": [32]},
          {"epochs": 4, "learning_rate": 1e-2, "pipeline": {"batch_size": 16, "sequence_length": 10}},
          progress=False)
    return root / "run"


@pytest.fixture(scope="session")
def toy_bundle(toy_run):
    """The toy run exported in float32 (real LiteRT)."""
    from export.exporter import export_run

    export_run(toy_run, "float32", toy_run.parent / "bundle", sample_messages=50)
    return toy_run.parent / "bundle"
