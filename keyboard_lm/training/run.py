"""A run directory: what ``kblm train`` writes and ``kblm evaluate`` / ``kblm export`` read.

    runs/NAME/
      config.json        model + train configs, corpus, vocabulary checksum, versions
      vocab/             vocab.txt + vocab.json (built from the train split)
      best.keras         the best model so far (valid perplexity), written atomically
      best.json          its epoch and metrics
      backup/            BackupAndRestore state while training
      last/              that state after the last epoch of a run that ended by its epochs or its
                         time (not kept after early stopping): ``--resume --epochs N`` continues it
      logs/train.csv     per-epoch metrics; logs/tensorboard/
      curves.png         the training curves
      metrics.json       the outcome: best valid metrics, throughput, wall time, status
"""
import dataclasses
import json
import math
import platform
import time
from pathlib import Path

from data_pipeline.errors import KblmError
from data_pipeline.textio import atomic_write_text

RUN_FORMAT_VERSION = 1


class RunPaths:
    """The files of one run directory."""

    def __init__(self, root):
        self.root = Path(root)
        self.config = self.root / "config.json"
        self.vocab = self.root / "vocab"
        self.best_model = self.root / "best.keras"
        self.best_record = self.root / "best.json"
        self.backup = self.root / "backup"
        self.last = self.root / "last"
        self.csv_log = self.root / "logs" / "train.csv"
        self.tensorboard = self.root / "logs" / "tensorboard"
        self.curves = self.root / "curves.png"
        self.metrics = self.root / "metrics.json"


def read_json(path, what):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KblmError(f"{path}: missing ({what})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise KblmError(f"{path}: not valid JSON ({e})") from None


def load_run_config(run_dir):
    """(ModelConfig, TrainConfig, raw dict) of a run; refuses unknown keys and versions."""
    from keyboard_lm.training.config import model_config_from_dict, train_config_from_dict

    paths = RunPaths(Path(run_dir))
    if not paths.root.is_dir():
        raise KblmError(f"{paths.root}: no such run directory")
    raw = read_json(paths.config, "a run holds config.json; was it made by `kblm train`?")
    if not isinstance(raw, dict):
        raise KblmError(f"{paths.config}: expected a JSON object, got {type(raw).__name__}")
    if raw.get("format_version") != RUN_FORMAT_VERSION:
        raise KblmError(f"{paths.config}: format_version {raw.get('format_version')!r}, "
                        f"expected {RUN_FORMAT_VERSION}")
    model = model_config_from_dict(raw.get("model", {}), f"{paths.config}: model")
    train = train_config_from_dict(raw.get("train", {}), f"{paths.config}: train")
    return model, train, raw


def run_field(raw, paths, section, key):
    """``raw[section][key]`` of a run's config.json, or a one-line error naming it."""
    value = raw.get(section)
    if not isinstance(value, dict) or not isinstance(value.get(key), str):
        raise KblmError(f"{paths.config}: {section}.{key}: expected a string, got "
                        f"{value.get(key) if isinstance(value, dict) else value!r}")
    return value[key]


def load_run_vocabulary(run_dir, model_config):
    """The run's vocabulary, checked against the model it was trained with."""
    from data_pipeline.vocab import Vocabulary

    paths = RunPaths(Path(run_dir))
    vocab = Vocabulary.load(paths.vocab)
    if len(vocab) != model_config.vocabulary_size:
        raise KblmError(f"{paths.vocab}: {len(vocab)} tokens, but the model's vocabulary_size is "
                        f"{model_config.vocabulary_size}; the vocabulary does not belong to this model")
    return vocab


def load_run_model(run_dir):
    """The best model of a run, loaded with Keras safe_mode (no arbitrary code)."""
    import keras

    from keyboard_lm.training.model import register_custom_layers

    register_custom_layers()

    paths = RunPaths(Path(run_dir))
    if not paths.best_model.is_file():
        raise KblmError(f"{paths.best_model}: missing; the run has not finished an epoch yet")
    import zipfile

    if not zipfile.is_zipfile(paths.best_model):  # Keras would say "File not found" of a cut-off zip
        raise KblmError(f"{paths.best_model}: not a .keras archive ({paths.best_model.stat().st_size:,} bytes: "
                        "truncated or corrupt); train the run again or restore the file")
    try:
        return keras.saving.load_model(paths.best_model, safe_mode=True, compile=False)
    except Exception as e:  # a zip/h5 error, a config Keras refuses: one line for the user
        raise KblmError(f"{paths.best_model}: cannot load ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else 'corrupt file'})") from None


@dataclasses.dataclass(frozen=True)
class Run:
    """An opened run: its configs (and config.json as read), its vocabulary and its best model."""

    paths: RunPaths
    model_config: object
    train_config: object
    raw: dict
    vocab: object
    model: object = None  # None when opened with model=False


def load_run(run_dir, model=True):
    """Opens a run: the configs (checked), the vocabulary (checked against the model config)
    and, unless ``model=False``, the best model; in that order, so the first fault found is
    the one reported."""
    model_config, train_config, raw = load_run_config(run_dir)
    vocab = load_run_vocabulary(run_dir, model_config)
    return Run(RunPaths(Path(run_dir)), model_config, train_config, raw, vocab,
               load_run_model(run_dir) if model else None)


def save_new_run(paths, corpus, vocab, model_config, train_config, extra):
    """Writes vocab/ and config.json for a fresh run."""
    import keras
    import tensorflow as tf

    from keyboard_lm.training.config import to_dict

    vocab.save(paths.vocab)
    config = {
        "format_version": RUN_FORMAT_VERSION,
        "model": to_dict(model_config),
        "train": to_dict(train_config),
        "corpus": {"spec": extra["corpus_spec"], "name": corpus.name, "source": corpus.source},
        "vocabulary": {"size": len(vocab), "sha256": vocab.metadata["sha256"],
                       "options": vocab.metadata["options"]},
        "preset": extra.get("preset"),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                     "python": platform.python_version()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_text(paths.config, json.dumps(config, indent=2) + "\n")
    return config


def message_window_count(lengths, sequence_length):
    """Windows a message-mode pipeline makes from messages of these token counts."""
    return sum(math.ceil((n + 1) / sequence_length) for n in lengths if n > 0)
