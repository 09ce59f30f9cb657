"""``kblm train``: corpus -> vocabulary -> batches -> model -> trained run directory.

Input: a corpus spec, a preset and overrides (or an existing run to resume). Output: a
run directory (see ``keyboard_lm.training.run``) whose ``metrics.json`` says how it ended.
"""
import dataclasses
import json
import os
import shutil
import time

from data_pipeline.errors import KblmError
from data_pipeline.textio import atomic_write_text
from keyboard_lm.training.run import (RunPaths, load_run_config, load_run_vocabulary, message_window_count,
                             read_json, run_field, save_new_run)


RESUMABLE = ("epochs", "max_minutes")  # what --resume may change: the budget, nothing else
FINISHED = ("complete", "early_stopped", "time_budget")


def _new_configs(preset_name, model_overrides, train_overrides):
    """The model and train configs of a new run: the preset, then the overrides, every field
    checked (before any data is loaded)."""
    from keyboard_lm.training.config import model_config_with, preset, to_dict, train_config_from_dict

    model_preset, train_preset = preset(preset_name)
    model_config = model_config_with(model_preset, model_overrides, "model")
    train_dict = to_dict(train_preset)
    pipeline = train_overrides.pop("pipeline", {})
    if not isinstance(pipeline, dict):
        raise KblmError(f"train.pipeline: expected an object, got {pipeline!r}")
    pipeline = {**train_dict.pop("pipeline"), **pipeline}
    train_config = train_config_from_dict({**train_dict, **train_overrides, "pipeline": pipeline}, "train")
    return model_config, train_config


def _new_run(paths, corpus_spec, preset_name, model_config, train_config, vocab_options,
             tokenizer_options, cache_dir, progress):
    from data_pipeline.corpora import check_splits, load_corpus
    from data_pipeline.vocab import build_vocabulary, count_splits

    corpus = load_corpus(corpus_spec, cache_dir)
    check_splits(corpus)  # train, valid and test each hold a message (said before tokenizing)
    split_counts = count_splits(corpus, tokenizer_options, progress)
    vocab = build_vocabulary(corpus, vocab_options, tokenizer_options, split_counts)
    model_config = dataclasses.replace(model_config, vocabulary_size=len(vocab))
    _check_corpus_size(corpus, split_counts, train_config.pipeline)
    save_new_run(paths, corpus, vocab, model_config, train_config,
                 {"corpus_spec": corpus_spec, "preset": preset_name})
    return corpus, vocab, model_config


class _Undo:
    """Removes what a new run adds under ``root`` (the directories it creates, or the entries
    it adds to an existing directory), and nothing else."""

    def __init__(self, root):
        self.root = root
        self.top = None  # the highest directory of the path that does not exist yet
        path = root
        while not path.exists() and path != path.parent:
            self.top, path = path, path.parent
        self.before = None if self.top is not None else set(root.iterdir())

    def __call__(self):
        if self.top is not None:
            shutil.rmtree(self.top, ignore_errors=True)
            return
        for entry in set(self.root.iterdir()) - self.before:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _check_corpus_size(corpus, split_counts, pipeline):
    for split in ("train", "valid"):
        lengths = split_counts[split][1]
        if pipeline.mode == "stream":
            have = sum(n + 2 for n in lengths if n > 0)
            need = pipeline.batch_size * (pipeline.sequence_length + 1)
            what = "ids"
        else:
            have = message_window_count(lengths, pipeline.sequence_length)
            need, what = pipeline.batch_size, "windows"
        if have < need:
            raise KblmError(f"corpus {corpus.name}: the {split} split makes {have} {what}, fewer "
                            f"than one batch needs ({need}); add text or lower --batch-size")


def _epochs_done(backup_dir):
    """Epochs a BackupAndRestore state (backup/ or last/) has completed (0 if none)."""
    metadata = backup_dir / "training_metadata.json"
    if not metadata.exists():
        return 0
    done = read_json(metadata, "BackupAndRestore's epoch counter").get("epoch")
    if not isinstance(done, int) or isinstance(done, bool) or done < 0:
        raise KblmError(f"{metadata}: epoch: expected an integer >= 0, got {done!r}")
    return done


def _resumed_run(paths, train_overrides, cache_dir):
    """The run in ``paths`` ready to continue (the budget in ``train_overrides`` applied), or
    None if it finished and nothing asks for more."""
    from data_pipeline.corpora import load_corpus
    from keyboard_lm.training.config import to_dict, train_config_from_dict

    model_config, train_config, raw = load_run_config(paths.root)
    budget = {k: train_overrides[k] for k in RESUMABLE if k in train_overrides}
    train_config = train_config_from_dict({**to_dict(train_config), **budget}, "train")
    status = None
    if paths.metrics.exists() and not paths.backup.exists():
        status = read_json(paths.metrics, "the outcome of the run").get("status")
    state = paths.backup if paths.backup.exists() else paths.last
    done = _epochs_done(state)
    if status in FINISHED:
        if status == "early_stopped":
            best = read_json(paths.metrics, "the outcome of the run").get("best") or {}
            raise KblmError(f"{paths.root}: early-stopped: valid perplexity stopped improving after epoch "
                            f"{best.get('epoch', '?')} (early_stopping_patience "
                            f"{train_config.early_stopping_patience}), so more epochs would not help; to train "
                            "longer start a new run with a larger early_stopping_patience (--config)")
        if not budget:
            print(f"{paths.root}: finished already ({status}); nothing to resume; to continue it, "
                  "give a larger --epochs or a new --max-minutes")
            return None
        if not paths.last.exists():
            raise KblmError(f"{paths.root}: finished ({status}) without keeping its last state "
                            f"({paths.last.name}/), so it cannot be continued; start a new run")
    if done >= train_config.epochs and (budget or status in FINISHED):
        raise KblmError(f"{paths.root}: epochs: the run has trained {done} epochs already (its epochs: "
                        f"{train_config.epochs}); give --epochs above {done} to continue it")
    vocab = load_run_vocabulary(paths.root, model_config)
    if vocab.metadata["sha256"] != run_field(raw, paths, "vocabulary", "sha256"):
        raise KblmError(f"{paths.vocab}: not the vocabulary this run was trained with (sha256 differs)")
    corpus = load_corpus(run_field(raw, paths, "corpus", "spec"), cache_dir)
    # Everything is loaded: now the run directory changes.
    if not paths.backup.exists() and paths.last.exists():
        os.replace(paths.last, paths.backup)  # BackupAndRestore resumes from it
    if budget:
        raw["train"] = {**raw["train"], **budget}
        earlier = raw.get("resumed") if isinstance(raw.get("resumed"), list) else []
        raw["resumed"] = [*earlier, {
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "after": status or "interrupted",
            "epochs_done": done, "train": budget}]
        atomic_write_text(paths.config, json.dumps(raw, indent=2) + "\n")
    return corpus, vocab, model_config, train_config


def train(out, corpus_spec="brown", preset_name="mobile", model_overrides=None, train_overrides=None,
          vocab_options=None, tokenizer_options=None, resume=False, cache_dir=None, progress=True):
    """Trains (or resumes) the run in ``out``; returns the metrics written to metrics.json.

    ``resume``: continue the run in ``out`` where it stopped; ``train_overrides`` may then hold
    a new budget (``epochs``, ``max_minutes``), which also continues a run that finished its
    epochs or its time; nothing else can change. A new run checks every setting before it
    loads any data and, if it fails before training starts, removes what it created.
    """
    from data_pipeline.tokenization import TokenizerOptions
    from data_pipeline.vocab import VocabularyOptions

    paths = RunPaths(out)
    model_overrides, train_overrides = dict(model_overrides or {}), dict(train_overrides or {})
    if resume:
        fixed = sorted(model_overrides) + sorted(k for k, v in train_overrides.items()
                                                 if k not in RESUMABLE and not (k == "pipeline" and not v))
        if fixed:
            raise KblmError(f"{paths.root}: {', '.join(fixed)} cannot change when resuming a run; only "
                            f"{' and '.join(RESUMABLE)} can (a different run needs another --out)")
        resumed = _resumed_run(paths, train_overrides, cache_dir)
        if resumed is None:
            return read_json(paths.metrics, "the outcome of the run")
        return fit_run(paths, *resumed, resume=True, progress=progress)
    model_config, train_config = _new_configs(preset_name, model_overrides, train_overrides)
    if paths.root.exists() and not paths.root.is_dir():
        raise KblmError(f"{paths.root}: exists and is not a directory; choose another --out")
    if paths.config.exists():
        raise KblmError(f"{paths.root}: a run is already there; pass --resume to continue it "
                        "or choose another --out")
    undo, started = _Undo(paths.root), []
    try:
        corpus, vocab, model_config = _new_run(
            paths, corpus_spec, preset_name, model_config, train_config,
            vocab_options or VocabularyOptions(), tokenizer_options or TokenizerOptions(), cache_dir, progress)
        return fit_run(paths, corpus, vocab, model_config, train_config, False, progress,
                       on_start=lambda: started.append(True))
    except BaseException:
        if not started:  # failed (or interrupted) before training: leave nothing half made
            undo()
        raise


def fit_run(paths, corpus, vocab, model_config, train_config, resume=False, progress=True, on_start=None):
    """Builds the model under the strategy and runs the training loop with the run's callbacks.

    ``on_start`` is called just before the first training step. A run that ends by its epochs
    or its time keeps its last state (weights, optimizer, epoch count) in ``last/``, so
    ``--resume`` with a larger budget can continue it.
    """
    import keras
    import tensorflow as tf

    from data_pipeline.dataset import make_dataset
    from keyboard_lm.training.callbacks import progress_options, run_callbacks
    from keyboard_lm.training.loop import Steps, TrainingDiverged, count_batches, fit, make_optimizer, resolve_strategy
    from keyboard_lm.training.model import build_training_model

    strategy = resolve_strategy(train_config.strategy)  # first: multi-worker must precede other ops
    keras.utils.set_random_seed(train_config.seed)
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(train_config.precision)
    pipeline = train_config.pipeline
    if pipeline.mode == "stream" and pipeline.batch_size % strategy.num_replicas_in_sync:
        raise KblmError(f"stream mode: batch_size {pipeline.batch_size} must divide among "
                        f"{strategy.num_replicas_in_sync} replicas")
    try:
        train_ds = make_dataset(corpus.splits["train"], vocab, pipeline, training=True)
        valid_ds = make_dataset(corpus.splits["valid"], vocab, pipeline, training=False)
        steps_per_epoch = count_batches(train_ds, train_config.steps_per_epoch)
        try:
            with strategy.scope():
                model = build_training_model(model_config, pipeline)
                optimizer = make_optimizer(train_config, steps_per_epoch)
                model.compile(optimizer=optimizer)
                optimizer.build(model.trainable_variables)
        except (MemoryError, tf.errors.ResourceExhaustedError):
            raise KblmError(f"model: embedding_dim {model_config.embedding_dim}, rnn_units "
                            f"{list(model_config.rnn_units)} over {model_config.vocabulary_size:,} words does "
                            "not fit in memory; choose smaller sizes") from None
        steps = Steps(model, model_config, strategy, train_config.clip_norm, train_config.jit_compile)
        run_list = run_callbacks(paths, train_config, model_config, resume, paths.root.name)
        for callback in run_list:  # kept when training ends: becomes last/ (see below)
            if isinstance(callback, keras.callbacks.BackupAndRestore):
                callback.delete_checkpoint = False
        display, plain = progress_options(progress)  # a bar on a terminal, plain lines in a log
        callbacks = keras.callbacks.CallbackList(
            run_list + plain, model=model, epochs=train_config.epochs, steps=steps_per_epoch, **display)
        started = time.monotonic()
        status = "complete"
        if on_start is not None:
            on_start()
        try:
            logs = fit(steps, train_ds, valid_ds, train_config, callbacks, steps_per_epoch)
        except TrainingDiverged:
            _write_metrics(paths, model, "diverged", {}, time.monotonic() - started)
            raise
        if model.stop_training:
            status = "early_stopped"
        elif train_config.max_minutes is not None and time.monotonic() - started > 60 * train_config.max_minutes:
            status = "time_budget"
        _keep_last_state(paths, status)
        return _write_metrics(paths, model, status, logs, time.monotonic() - started)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def _keep_last_state(paths, status):
    """backup/ becomes last/ when more epochs or time could continue the run; else it goes."""
    if not paths.backup.exists():
        return
    if status in ("complete", "time_budget"):
        if paths.last.exists():
            shutil.rmtree(paths.last)
        os.replace(paths.backup, paths.last)
    else:
        shutil.rmtree(paths.backup)


def _write_metrics(paths, model, status, logs, seconds):
    best = read_json(paths.best_record, "best model record") if paths.best_record.exists() else None
    metrics = {"status": status, "parameters": int(model.count_params()), "best": best,
               "final": logs, "train_seconds": round(seconds, 1)}
    atomic_write_text(paths.metrics, json.dumps(metrics, indent=2) + "\n")
    return metrics
