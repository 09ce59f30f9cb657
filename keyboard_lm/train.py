"""``kblm train``: corpus -> vocabulary -> batches -> model -> trained run directory.

Input: a corpus spec, a preset and overrides (or an existing run to resume). Output: a
run directory (see ``keyboard_lm.run``) whose ``metrics.json`` says how it ended.
"""
import dataclasses
import json
import time

from data_pipeline.errors import KblmError
from data_pipeline.textio import atomic_write_text
from keyboard_lm.run import (RunPaths, load_run_config, load_run_vocabulary, message_window_count,
                             read_json, save_new_run)


def _new_run(paths, corpus_spec, preset_name, model_overrides, train_overrides, vocab_options,
             tokenizer_options, cache_dir, progress):
    from data_pipeline.corpora import load_corpus
    from data_pipeline.vocab import build_vocabulary, count_splits
    from keyboard_lm.config import model_config_from_dict, preset, to_dict, train_config_from_dict

    if paths.config.exists():
        raise KblmError(f"{paths.root}: a run is already there; pass --resume to continue it "
                        "or choose another --out")
    model_preset, train_preset = preset(preset_name)
    model_config = model_config_from_dict({**to_dict(model_preset), **model_overrides}, "model")
    train_dict = to_dict(train_preset)
    pipeline = {**train_dict.pop("pipeline"), **train_overrides.pop("pipeline", {})}
    train_config = train_config_from_dict({**train_dict, **train_overrides, "pipeline": pipeline}, "train")
    corpus = load_corpus(corpus_spec, cache_dir)
    split_counts = count_splits(corpus, tokenizer_options, progress)
    vocab = build_vocabulary(corpus, vocab_options, tokenizer_options, split_counts)
    model_config = dataclasses.replace(model_config, vocabulary_size=len(vocab))
    _check_corpus_size(corpus, split_counts, train_config.pipeline)
    save_new_run(paths, corpus, vocab, model_config, train_config,
                 {"corpus_spec": corpus_spec, "preset": preset_name})
    return corpus, vocab, model_config, train_config


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


def _resumed_run(paths, cache_dir):
    from data_pipeline.corpora import load_corpus

    model_config, train_config, raw = load_run_config(paths.root)
    vocab = load_run_vocabulary(paths.root, model_config)
    if vocab.metadata["sha256"] != raw["vocabulary"]["sha256"]:
        raise KblmError(f"{paths.vocab}: not the vocabulary this run was trained with (sha256 differs)")
    corpus = load_corpus(raw["corpus"]["spec"], cache_dir)
    return corpus, vocab, model_config, train_config


def train(out, corpus_spec="brown", preset_name="mobile", model_overrides=None, train_overrides=None,
          vocab_options=None, tokenizer_options=None, resume=False, cache_dir=None, progress=True):
    """Trains (or resumes) the run in ``out``; returns the metrics written to metrics.json."""
    from data_pipeline.tokenization import TokenizerOptions
    from data_pipeline.vocab import VocabularyOptions

    paths = RunPaths(out)
    if resume:
        if paths.metrics.exists() and not paths.backup.exists():
            metrics = read_json(paths.metrics, "the outcome of the run")
            if metrics.get("status") in ("complete", "early_stopped", "time_budget"):
                print(f"{paths.root}: finished already ({metrics['status']}); nothing to resume")
                return metrics
        corpus, vocab, model_config, train_config = _resumed_run(paths, cache_dir)
    else:
        corpus, vocab, model_config, train_config = _new_run(
            paths, corpus_spec, preset_name, dict(model_overrides or {}), dict(train_overrides or {}),
            vocab_options or VocabularyOptions(), tokenizer_options or TokenizerOptions(),
            cache_dir, progress)
    return fit_run(paths, corpus, vocab, model_config, train_config, resume, progress)


def fit_run(paths, corpus, vocab, model_config, train_config, resume=False, progress=True):
    """Builds the model under the strategy and runs the training loop with the run's callbacks."""
    import keras

    from data_pipeline.dataset import make_dataset
    from keyboard_lm.callbacks import run_callbacks
    from keyboard_lm.loop import Steps, TrainingDiverged, fit, make_optimizer, resolve_strategy
    from keyboard_lm.model import build_training_model

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
        steps_per_epoch = _count_batches(train_ds, train_config.steps_per_epoch)
        with strategy.scope():
            model = build_training_model(model_config, pipeline)
            optimizer = make_optimizer(train_config, steps_per_epoch)
            model.compile(optimizer=optimizer)
            optimizer.build(model.trainable_variables)
        steps = Steps(model, model_config, strategy, train_config.clip_norm, train_config.jit_compile)
        callbacks = keras.callbacks.CallbackList(
            run_callbacks(paths, train_config, model_config, resume, paths.root.name),
            add_progbar=progress, model=model, verbose=1 if progress else 0,
            epochs=train_config.epochs, steps=steps_per_epoch)
        started = time.monotonic()
        status = "complete"
        try:
            logs = fit(steps, train_ds, valid_ds, train_config, callbacks, steps_per_epoch)
        except TrainingDiverged:
            _write_metrics(paths, model, "diverged", {}, time.monotonic() - started)
            raise
        if model.stop_training:
            status = "early_stopped"
        elif train_config.max_minutes is not None and time.monotonic() - started > 60 * train_config.max_minutes:
            status = "time_budget"
        return _write_metrics(paths, model, status, logs, time.monotonic() - started)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def _count_batches(dataset, cap=None):
    """Global batches in one pass (at most ``cap``); a full pass also fills the cache."""
    count = 0
    for _ in dataset:
        count += 1
        if cap is not None and count >= cap:
            break
    return max(1, count)


def _write_metrics(paths, model, status, logs, seconds):
    best = read_json(paths.best_record, "best model record") if paths.best_record.exists() else None
    metrics = {"status": status, "parameters": int(model.count_params()), "best": best,
               "final": logs, "train_seconds": round(seconds, 1)}
    atomic_write_text(paths.metrics, json.dumps(metrics, indent=2) + "\n")
    return metrics
