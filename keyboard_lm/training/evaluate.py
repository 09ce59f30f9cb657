"""``kblm evaluate``: perplexity and top-1/top-3 next-word accuracy of a run's best model.

Input: a run directory and a split. Output: a dict (also ``eval-SPLIT.json`` in the run).
"""
import dataclasses
import json

import tensorflow as tf
from data_pipeline.progress import progress as tqdm

from data_pipeline.corpora import SPLITS, load_corpus
from data_pipeline.dataset import make_dataset
from data_pipeline.errors import KblmError
from data_pipeline.textio import atomic_write_text
from keyboard_lm.training.loop import Steps, evaluate
from keyboard_lm.training.metrics import summarize
from keyboard_lm.training.run import RunPaths, load_run

STREAM_EVAL_BATCH = 10  # rows of parallel text in stream-mode evaluation (as word_language_model)


def evaluate_run(run_dir, split="test", mode=None, batch_size=None, cache_dir=None,
                 max_batches=None, progress=True):
    if split not in SPLITS:
        raise KblmError(f"split must be one of {list(SPLITS)}; got {split!r}")
    run = load_run(run_dir)
    model_config, train_config, raw = run.model_config, run.train_config, run.raw
    vocab, model = run.vocab, run.model
    corpus = load_corpus(raw["corpus"]["spec"], cache_dir)
    mode = mode or train_config.pipeline.mode
    default_batch = STREAM_EVAL_BATCH if mode == "stream" else train_config.pipeline.batch_size
    pipeline = dataclasses.replace(train_config.pipeline, mode=mode, batch_size=batch_size or default_batch)
    dataset = make_dataset(corpus.splits[split], vocab, pipeline, training=False)
    steps = Steps(model, model_config, tf.distribute.get_strategy(), clip_norm=1.0)
    with tqdm(desc=f"evaluating {split}", unit=" batch", disable=not progress) as bar:
        sums = evaluate(steps, dataset, pipeline.batch_size if mode == "stream" else None,
                        max_batches, bar)
    result = {"split": split, "mode": mode, "batch_size": pipeline.batch_size,
              **summarize(sums)}
    atomic_write_text(RunPaths(run_dir).root / f"eval-{split}.json", json.dumps(result, indent=2) + "\n")
    return result


def evaluate_messages(run_dir, named_messages, batch_size=32):
    """{name: perplexity, top-1/top-3...} of a run's best model on each list of messages,
    each scored from <bos> (message mode, as the keyboard starts a text field)."""
    run = load_run(run_dir)
    vocab = run.vocab
    steps = Steps(run.model, run.model_config, tf.distribute.get_strategy(), clip_norm=1.0)
    pipeline = dataclasses.replace(run.train_config.pipeline, mode="message", batch_size=batch_size)
    return {name: summarize(evaluate(steps, make_dataset(messages, vocab, pipeline, training=False)))
            for name, messages in named_messages.items()}
