"""``kblm personalize``: fine-tune a base run on one person's text, or on many people's.

Input: a base run (``kblm train``), a user's text (file or directory, one message per
line). Output: a run directory ``kblm export`` and ``kblm evaluate`` accept, plus
``report.json`` (written last: its presence marks the user as done):

    runs/NAME-USER/
      config.json     the base's config + a "personalization" section (options, user text)
      vocab/          the base vocabulary, unchanged (unseen words stay <unk>)
      best.keras      the epoch that did best on the user's held-out slice (the base if nothing
                      beat it), after the final pass
      best.json, logs/train.csv, metrics.json
      bundle/         the exported bundle (unless --quantize none)
      report.json     before -> after on the user's held-out text (or --eval-texts) and on
                      general text, keystroke savings through the harness, time and peak memory

How: the last ``holdout`` share of the user's messages is held out for early stopping;
the rest is fine-tuned on in message mode (each sentence from <bos>, as the keyboard
starts a text field) with a small learning rate, optionally freezing layers, and with
an L2 penalty ``anchor * sum((w - w_base)^2)`` pulling the weights back toward the
base so general ability is not forgotten. Once the held-out slice has chosen the epoch,
one more epoch runs over all the user's text, held-out slice included (``final_pass``): it
is the user's latest text, and the sweep on dev slices found a small gain. (It is skipped
when the base was kept or the time budget is spent.) The held-out slice is then no longer
unseen, so without ``eval_texts`` the report's user figures (and the KSR replay, through a
bundle exported for it) describe the chosen epoch before the pass: the shipped model
learned a little more. Everything is written to a temp directory and renamed at the end:
a failure leaves neither a half-written run nor a changed base.

Many users: a directory with one file or subdirectory per user; users run in parallel
processes, users already done are skipped (the batch resumes), and one user's bad data
is reported in the summary without stopping the others.
"""
import dataclasses
import json
import math
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from data_pipeline import tokenization
from data_pipeline.errors import KblmError
from data_pipeline.textio import atomic_directory, atomic_write_text
from data_pipeline.vocab import UNK_ID

MIN_WORDS = 300  # below this a fine-tune mostly memorises; the message says so
MIN_KNOWN = 0.10  # share of the user's words the base vocabulary must know
WARN_UNKNOWN = 0.20  # at this share of <unk> words, the report warns (its figures count <unk> hits)
FREEZE = ("none", "embedding", "all-but-last")


@dataclasses.dataclass(frozen=True)
class PersonalizeOptions:
    epochs: int = 20  # the ceiling: early stopping on the held-out slice decides
    learning_rate: float = 3e-4
    batch_size: int = 16
    patience: int = 2  # epochs without held-out improvement before stopping
    anchor: float = 1e-3  # L2 pull toward the base weights (0: off)
    freeze: str = "none"  # none | embedding (and the tied output) | all-but-last (RNN layer)
    dropout: float | None = None  # dropout while fine-tuning (None: the base's)
    final_pass: bool = True  # after early stopping, one more epoch over all the user's text
    holdout: float = 0.1  # share of the user's messages held out for early stopping
    max_minutes: float | None = None
    general_limit: int = 2000  # general-text messages for the forgetting check
    ksr_limit: int = 200  # user messages replayed through the harness (0: skip)
    quantize: str | None = "dynamic_int8"  # the bundle to export (None: no export)
    # exported instead when ``quantize`` loses more top-3 than the export's tolerance (None: fail)
    quantize_fallback: str | None = "float16"
    threads: int | None = None  # TensorFlow threads (None: all cores)
    seed: int = 1234
    paragraphs: bool = False  # the user's text: one message per blank-line-separated paragraph
    replace_bad_bytes: bool = False  # the user's text: invalid UTF-8 bytes become U+FFFD

    def __post_init__(self):
        if self.freeze not in FREEZE:
            raise KblmError(f"freeze must be one of {list(FREEZE)}; got {self.freeze!r}")
        if not 0 < self.holdout < 0.5:
            raise KblmError(f"holdout must be in (0, 0.5); got {self.holdout}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise KblmError(f"dropout must be in [0, 1); got {self.dropout}")
        if self.epochs < 1 or self.learning_rate <= 0 or self.anchor < 0:
            raise KblmError("epochs and learning_rate must be positive and anchor >= 0; got "
                            f"{self.epochs}, {self.learning_rate}, {self.anchor}")


def count_words(messages, vocab):
    """(words, words the vocabulary knows) over the messages, by the vocabulary's tokenizer."""
    words = known = 0
    for message in messages:
        for token in tokenization.tokenize(message, vocab.tokenizer_options):
            if tokenization.is_word(token):
                words += 1
                known += vocab.id(token) != UNK_ID
    return words, known


def split_user_text(messages, holdout):
    """(train, held out): the last ``holdout`` share of messages (at least one) is held out."""
    held = max(1, round(len(messages) * holdout))
    return messages[:-held], messages[-held:]


def _exported_from(bundle_dir, run):
    """True if the bundle was exported from the run as it is now (same config and best model)."""
    import hashlib

    from keyboard_lm.training.run import RunPaths

    try:
        source = json.loads((Path(bundle_dir) / "manifest.json").read_text())["run"]
    except (OSError, ValueError, KeyError):
        return False
    paths = RunPaths(run)
    best = json.loads(paths.best_record.read_text()) if paths.best_record.exists() else None
    return (source.get("config_sha256") == hashlib.sha256(paths.config.read_bytes()).hexdigest()
            and source.get("best") == best)


def finished(out, base, options):
    """True if ``out`` holds a finished personalization of ``base`` with these options."""
    try:
        config = json.loads((Path(out) / "config.json").read_text())["personalization"]
        json.loads((Path(out) / "report.json").read_text())
    except (OSError, ValueError, KeyError):
        return False
    wanted = {k: v for k, v in dataclasses.asdict(options).items() if k != "threads"}
    # Options added since, as runs made before them behaved (a run that finished without the
    # fallback never needed it).
    older = {"dropout": None, "final_pass": False, "quantize_fallback": "float16", "paragraphs": False,
             "replace_bad_bytes": False}
    had = {k: v for k, v in {**older, **config["options"]}.items() if k != "threads"}
    return config["base"] == str(base) and had == wanted


def check_user_text(source, messages, vocab):
    words, known = count_words(messages, vocab)
    if words < MIN_WORDS:
        raise KblmError(f"{source}: {words} words of user text; personalization needs at least "
                        f"{MIN_WORDS} (the base run is untouched)")
    if known < MIN_KNOWN * words:
        raise KblmError(f"{source}: only {known} of {words} words are in the base vocabulary "
                        f"({known / words:.0%}); personalization needs at least {MIN_KNOWN:.0%}")
    return words, known


def unknown_words_warnings(source, words, known):
    """A warning when many of the user's words are <unk> to the base: the figures count a
    predicted <unk> as a correct prediction, so they flatter the model (another language?)."""
    unknown = (words - known) / words if words else 0.0
    if unknown < WARN_UNKNOWN:
        return []
    return [f"{source}: {unknown:.0%} of the user's words are not in the base vocabulary and become <unk>; "
            "perplexity and top-3 count a predicted <unk> as correct, so the user figures overstate the "
            "gain (see top-3 over known words); a base trained on this text's language would serve better"]


def _known_targets(inputs, targets, weights):
    """The batch with <unk> targets weighted 0: metrics over the words the vocabulary knows."""
    import tensorflow as tf

    return inputs, targets, weights * tf.cast(tf.not_equal(targets, UNK_ID), weights.dtype)


def set_threads(threads):
    import tensorflow as tf

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # TensorFlow already started in this process: keep its pools
            pass


def _freeze(model, config, how):
    rnn = [layer for layer in model.layers if layer.name.startswith(f"{config.cell}_")]
    for layer in model.layers:
        if how == "embedding" and layer.name in ("embedding", "output"):
            layer.trainable = False
        if how == "all-but-last" and layer.weights and layer is not rnn[-1]:
            layer.trainable = False


def _general_messages(raw, general, limit, cache_dir):
    from data_pipeline.corpora import load_corpus, read_messages

    if general:
        messages = read_messages(general) if Path(general).exists() else load_corpus(general, cache_dir).splits["test"]
    else:
        messages = load_corpus(raw["corpus"]["spec"], cache_dir).splits["test"]
    return messages[:limit]


def personalize(base, texts, out, options=PersonalizeOptions(), eval_texts=None, general=None,
                base_bundle=None, cache_dir=None, progress=True):
    """Fine-tunes ``base`` on the user's ``texts`` into the run ``out``; returns the report."""
    from data_pipeline.corpora import read_messages
    from keyboard_lm.training.run import load_run

    started = time.monotonic()
    set_threads(options.threads)
    run = load_run(base, model=False)
    model_config, base_train, raw, vocab = run.model_config, run.train_config, run.raw, run.vocab
    if vocab.metadata["sha256"] != raw.get("vocabulary", {}).get("sha256"):
        raise KblmError(f"{Path(base) / 'vocab'}: not the vocabulary the base run was trained with (sha256 differs)")
    messages = read_messages(texts, options.paragraphs, options.replace_bad_bytes)
    words, known = check_user_text(texts, messages, vocab)
    warnings = unknown_words_warnings(texts, words, known)
    for warning in warnings:  # once, up front; also in report.json
        print(f"kblm: warning: {warning}", file=sys.stderr)
    if len(messages) < 2:
        raise KblmError(f"{texts}: one message (line); personalization holds the last lines out to "
                        "know when to stop, so give one message per line")
    train_messages, held_messages = split_user_text(messages, options.holdout)
    eval_messages = read_messages(eval_texts, options.paragraphs, options.replace_bad_bytes) if eval_texts else held_messages
    general_messages = _general_messages(raw, general, options.general_limit, cache_dir)
    if Path(out).resolve() == Path(base).resolve():
        raise KblmError(f"{out}: is the base run; choose another --out")
    with atomic_directory(out) as tmp:
        shutil.copytree(Path(base) / "vocab", tmp / "vocab")
        personalization = {"base": str(base), "texts": str(texts), "eval_texts": str(eval_texts or ""),
                           "options": dataclasses.asdict(options), "words": words, "known_words": known,
                           "train_messages": len(train_messages), "held_out_messages": len(held_messages)}
        model_section = raw["model"] if options.dropout is None else {**raw["model"], "dropout": options.dropout}
        atomic_write_text(tmp / "config.json", json.dumps({**raw, "model": model_section,
                                                           "personalization": personalization}, indent=2) + "\n")
        replayed = tmp / "bundle"  # the bundle the KSR replay measures

        def before_final_pass():  # the held-out slice is about to be trained on: keep its view
            nonlocal replayed
            if eval_texts is None and options.quantize and options.ksr_limit:
                replayed = tmp / ".chosen-epoch-bundle"
                _export_bundle(tmp, options, replayed, cache_dir)

        result = _fine_tune(base, tmp, model_config, base_train, vocab, options, train_messages, held_messages,
                            eval_messages if eval_texts else None, general_messages, progress, before_final_pass)
        report = {"user": Path(texts).stem if texts else Path(out).name, "words": words,
                  "known_words": known, **result, "warnings": warnings}
        if options.quantize:
            report["bundle_quantization"], fallback_reason = _export_bundle(tmp, options, tmp / "bundle", cache_dir)
            if fallback_reason:
                report["quantize_fallback_reason"] = fallback_reason
            if options.ksr_limit:
                report["ksr"] = _keystroke_savings(base, base_bundle, replayed, options.quantize,
                                                   eval_messages[:options.ksr_limit], cache_dir)
        shutil.rmtree(tmp / ".chosen-epoch-bundle", ignore_errors=True)
        report["seconds_total"] = round(time.monotonic() - started, 1)
        report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        atomic_write_text(tmp / "report.json", json.dumps(report, indent=2) + "\n")
    return report


def _fine_tune(base, tmp, model_config, base_train, vocab, options, train_messages, held_messages,
               eval_messages, general_messages, progress, before_final_pass=lambda: None):
    """Fits, keeps the best epoch, runs the final pass; ``eval_messages`` None: the held-out slice."""
    import keras
    import tensorflow as tf

    from data_pipeline.dataset import make_dataset
    from keyboard_lm.training.callbacks import MONITOR, AtomicModelCheckpoint, progress_options
    from keyboard_lm.training.loop import Steps, count_batches, evaluate, fit, make_optimizer
    from keyboard_lm.training.metrics import summarize
    from keyboard_lm.training.model import portable_copy
    from keyboard_lm.training.run import RunPaths, load_run_model

    paths = RunPaths(tmp)
    keras.utils.set_random_seed(options.seed)
    pipeline = dataclasses.replace(base_train.pipeline, mode="message", batch_size=options.batch_size,
                                   seed=options.seed)
    config = dataclasses.replace(base_train, epochs=options.epochs, learning_rate=options.learning_rate,
                                 schedule="constant", early_stopping_patience=options.patience,
                                 max_minutes=options.max_minutes, strategy="default", steps_per_epoch=None,
                                 validation_steps=None, seed=options.seed, pipeline=pipeline)
    model = load_run_model(base)  # runs save the shape-agnostic model (portable_copy)
    if model.outputs[0].shape[-1] != len(vocab):
        raise KblmError(f"{base}: the model predicts {model.outputs[0].shape[-1]} ids but the vocabulary "
                        f"has {len(vocab)}; the base run's files do not belong together")
    base_weights = model.get_weights()
    if options.dropout is not None and options.dropout != model_config.dropout:
        # the same network at the new rate (config.json records it)
        model_config = dataclasses.replace(model_config, dropout=options.dropout)
        model = portable_copy(model, model_config)
    _freeze(model, model_config, options.freeze)
    datasets = {name: make_dataset(messages, vocab, pipeline, training=name == "train")
                for name, messages in (("train", train_messages), ("held_out", held_messages),
                                       ("eval", eval_messages or held_messages), ("general", general_messages))}
    datasets["eval_known"] = datasets["eval"].map(_known_targets)  # the user's text, <unk> targets left out
    steps_per_epoch = count_batches(datasets["train"])
    model.compile(optimizer=make_optimizer(config, steps_per_epoch))
    model.optimizer.build(model.trainable_variables)
    anchors = [tf.constant(v.numpy()) for v in model.trainable_variables]

    def penalty():
        return options.anchor * tf.add_n([tf.reduce_sum(tf.square(v - a))
                                          for v, a in zip(model.trainable_variables, anchors)])

    steps = Steps(model, model_config, tf.distribute.get_strategy(), config.clip_norm,
                  penalty=penalty if options.anchor and model.trainable_variables else None)

    def measure():
        return {name: summarize(evaluate(steps, datasets[name])) for name in ("eval", "general", "eval_known")}

    before = measure()
    base_held = before["eval"] if eval_messages is None else summarize(evaluate(steps, datasets["held_out"]))
    paths.csv_log.parent.mkdir(parents=True, exist_ok=True)
    display, plain = progress_options(progress)  # a bar on a terminal, plain lines in a log
    callbacks = keras.callbacks.CallbackList(
        [AtomicModelCheckpoint(str(paths.best_model), paths.best_record, model_config,
                               initial_value_threshold=base_held["perplexity"]),
         keras.callbacks.CSVLogger(str(paths.csv_log)),
         keras.callbacks.EarlyStopping(MONITOR, mode="min", patience=options.patience), *plain],
        model=model, epochs=config.epochs, steps=steps_per_epoch, **display)
    tuned = time.monotonic()
    fit(steps, datasets["train"], datasets["held_out"], config, callbacks, steps_per_epoch)
    seconds = time.monotonic() - tuned
    if paths.best_model.exists():
        model.set_weights(load_run_model(tmp).get_weights())
    else:  # nothing beat the base on the held-out slice: the base is the best model
        model.set_weights(base_weights)
        portable_copy(model, model_config).save(paths.best_model)  # without Adam's state
        atomic_write_text(paths.best_record, json.dumps({"epoch": 0, "val_perplexity": base_held["perplexity"]}) + "\n")
    record = json.loads(paths.best_record.read_text())
    budget = None if options.max_minutes is None else 60 * options.max_minutes
    chosen_eval, pass_seconds = None, None
    if options.final_pass and record["epoch"] and (budget is None or seconds < budget):
        # The held-out slice chose the epoch; now the model learns from it too: it is the
        # user's latest text. (best.json's held-out figures describe the epoch before this pass.)
        from data_pipeline.progress import progress as tqdm

        from keyboard_lm.training.loop import TrainingDiverged

        if eval_messages is None:  # the slice is about to be seen: keep the chosen epoch's figures on it
            chosen_eval = {key[len("val_"):]: value for key, value in record.items() if key.startswith("val_")}
            chosen_known = summarize(evaluate(steps, datasets["eval_known"]))  # the best weights, before the pass
        before_final_pass()
        pass_started, loss_sum = time.monotonic(), 0.0
        # Adam's moments carry over from the last epoch trained, as they would in one more epoch.
        everything = make_dataset(train_messages + held_messages, vocab, pipeline, training=True)
        for batch in tqdm(everything, desc="final pass", unit=" batch", disable=not progress):
            sums, _ = steps.train_step(batch, None, False)  # the call fit makes: no retrace
            loss_sum += float(sums["loss_sum"])
            if not math.isfinite(loss_sum):
                raise TrainingDiverged(f"the final pass diverged (loss {loss_sum}); rerun with a lower "
                                       "--learning-rate or --no-final-pass")
            if budget is not None and time.monotonic() - tuned > budget:
                break  # the time budget covers the pass too
        portable_copy(model, model_config).save(paths.best_model)  # without Adam's state
        atomic_write_text(paths.best_record, json.dumps({**record, "final_pass": True}) + "\n")
        pass_seconds = time.monotonic() - pass_started
        seconds = time.monotonic() - tuned
    after = measure()
    if chosen_eval is not None:
        after["eval"], after["eval_known"] = chosen_eval, chosen_known
    metrics = {"status": "complete", "parameters": int(model.count_params()),
               "trainable_parameters": int(sum(v.numpy().size for v in model.trainable_variables)),
               "best": json.loads(paths.best_record.read_text()), "train_seconds": round(seconds, 1)}
    atomic_write_text(paths.metrics, json.dumps(metrics, indent=2) + "\n")
    return {"before": before, "after": after, "finetune_seconds": round(seconds, 1),
            "final_pass": pass_seconds is not None,
            "final_pass_seconds": None if pass_seconds is None else round(pass_seconds, 1),
            # True: "after" on the user's text is the chosen epoch, measured on the held-out slice
            # before the final pass trained on it (no --eval-texts); KSR likewise
            "user_after_before_final_pass": chosen_eval is not None,
            "train_messages": len(train_messages), "held_out_messages": len(held_messages),
            "eval_messages": len(eval_messages or held_messages), "general_messages": len(general_messages),
            "trainable_parameters": metrics["trainable_parameters"], "best_epoch": metrics["best"].get("epoch")}


def _export_bundle(run, options, out, cache_dir):
    """Exports ``run`` as ``options.quantize``, or as the fallback mode if that loses more
    top-3 accuracy than the export allows; returns (mode, why the fallback was used or None)."""
    from export.exporter import QuantizationLoss, export_run

    try:
        export_run(run, options.quantize, out, cache_dir=cache_dir)
        return options.quantize, None
    except QuantizationLoss as error:
        if not options.quantize_fallback or options.quantize_fallback == options.quantize:
            raise KblmError(f"{error} (kblm personalize: --quantize another mode, or "
                            "--quantize-fallback float16)") from None
        export_run(run, options.quantize_fallback, out, cache_dir=cache_dir)
        return options.quantize_fallback, str(error).split(";")[0]


def _keystroke_savings(base, base_bundle, bundle, quantize, messages, cache_dir):
    """KSR and top-3 of the base and the personalized bundle on the user's messages."""
    from export.exporter import export_run
    from keyboard_lm.phone.bundle import load_bundle
    from keyboard_lm.phone.engine import open_engine
    from keyboard_lm.phone.simulator import EnginePredictor, simulate

    with tempfile.TemporaryDirectory() as scratch:
        if base_bundle is None:
            base_bundle = Path(scratch) / "base-bundle"
            export_run(base, quantize, base_bundle, cache_dir=cache_dir)
        bundles = {"before": load_bundle(base_bundle), "after": load_bundle(bundle)}
        if bundles["before"].vocab.metadata["sha256"] != bundles["after"].vocab.metadata["sha256"]:
            raise KblmError(f"{base_bundle}: its vocabulary is not the base run's; re-export the base")
        out = {}
        for name, loaded in bundles.items():
            report = simulate(EnginePredictor(open_engine(loaded)), messages, progress=False)
            out[name] = {k: report[k] for k in ("ksr", "top1", "top3", "words", "messages")}
    return out


# -- many users ------------------------------------------------------------------------------

def user_sources(users_dir):
    """{user name: file or directory} for each non-hidden entry of ``users_dir``."""
    users_dir = Path(users_dir)
    if not users_dir.is_dir():
        raise KblmError(f"{users_dir}: not a directory (give one file or subdirectory per user)")
    users = {}
    for entry in sorted(users_dir.iterdir()):
        if entry.name.startswith("."):
            continue
        name = entry.stem if entry.is_file() else entry.name
        if name in users:
            raise KblmError(f"{entry}: user name {name!r} is used twice in {users_dir}")
        users[name] = entry
    if not users:
        raise KblmError(f"{users_dir}: no users (no files or subdirectories)")
    return users


def _personalize_one(args):
    base, source, out, options, general, base_bundle, cache_dir = args
    try:
        return personalize(base, source, out, options, general=general, base_bundle=base_bundle,
                           cache_dir=cache_dir, progress=False)
    except KblmError as error:
        return {"error": str(error)}
    except Exception as error:  # one user's failure must not stop the batch: reported, not raised
        return {"error": f"{type(error).__name__}: {error}"}


def personalize_many(base, users_dir, out_root, options=PersonalizeOptions(), jobs=1, general=None,
                     cache_dir=None, progress=True):
    """One personalized run per user under ``out_root``; returns the summary rows."""
    import concurrent.futures
    import multiprocessing

    from data_pipeline.progress import progress as tqdm

    from keyboard_lm.training.run import load_run_config

    load_run_config(base)  # a bad base fails once, before any process starts
    users = user_sources(users_dir)
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    base_bundle = None
    if options.quantize and options.ksr_limit:  # exported once, shared by every user's KSR
        from export.exporter import export_run

        base_bundle = out_root / f".base-bundle-{options.quantize}"
        if not _exported_from(base_bundle, base):  # missing, or made from another (state of the) base
            export_run(base, options.quantize, base_bundle, cache_dir=cache_dir)
    for stale in out_root.glob(".*.tmp"):  # left by a batch that was killed mid-user
        shutil.rmtree(stale, ignore_errors=True)
    rows, todo = {}, []
    for name, source in users.items():
        if finished(out_root / name, base, options):
            report = json.loads((out_root / name / "report.json").read_text())
            rows[name] = {"user": name, "status": "done earlier", **_summary(report)}
        else:
            todo.append((name, (base, source, out_root / name, options, general, base_bundle, cache_dir)))
    threads = options.threads or max(1, (multiprocessing.cpu_count() // max(jobs, 1)))
    job_args = [(name, (*a[:3], dataclasses.replace(options, threads=threads), *a[4:])) for name, a in todo]
    context = multiprocessing.get_context("spawn")  # TensorFlow does not survive fork
    with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=context) as pool:
        futures = {pool.submit(_personalize_one, a): name for name, a in job_args}
        for future in tqdm(concurrent.futures.as_completed(futures), total=len(futures), desc="users",
                           unit=" user", disable=not progress):
            name = futures[future]
            try:
                result = future.result()
            except concurrent.futures.process.BrokenProcessPool as error:  # a worker was killed (OOM?)
                result = {"error": f"its process died ({error}); rerun the batch to retry"}
            if "error" in result:
                rows[name] = {"user": name, "status": "failed", "error": result["error"]}
            else:
                rows[name] = {"user": name, "status": "personalized", **_summary(result)}
    summary = [rows[name] for name in users]
    atomic_write_text(out_root / "summary.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(out_root / "summary.md", format_summary(summary) + "\n")
    return summary


def _summary(report):
    row = {"words": report["words"], "seconds": report["seconds_total"],
           "finetune_seconds": report["finetune_seconds"], "bundle": report.get("bundle_quantization", "")}
    for when in ("before", "after"):
        row[f"user_ppl_{when}"] = report[when]["eval"]["perplexity"]
        row[f"user_top3_{when}"] = report[when]["eval"]["top3"]
        row[f"general_ppl_{when}"] = report[when]["general"]["perplexity"]
        if "ksr" in report:
            row[f"ksr_{when}"] = report["ksr"][when]["ksr"]
    return row


def format_summary(rows):
    lines = ["| user | status | words | user ppl | user top-3 | general ppl | KSR | seconds | bundle |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if row["status"] == "failed":
            lines.append(f"| {row['user']} | failed: {row['error']} | | | | | | | |")
            continue
        ksr = (f"{row['ksr_before']:.1%} → {row['ksr_after']:.1%}" if "ksr_before" in row else "")
        lines.append(f"| {row['user']} | {row['status']} | {row['words']:,} | {row['user_ppl_before']:.1f} → "
                     f"{row['user_ppl_after']:.1f} | {row['user_top3_before']:.1%} → {row['user_top3_after']:.1%} | "
                     f"{row['general_ppl_before']:.1f} → {row['general_ppl_after']:.1f} | {ksr} | {row['seconds']:.0f} | "
                     f"{row.get('bundle', '')} |")
    return "\n".join(lines)


def format_report(report):
    b, a = report["before"], report["after"]
    chosen = (" (held-out slice, the chosen epoch before the final pass)"
              if report.get("user_after_before_final_pass") else "")
    text = (f"{report['user']}: user text perplexity {b['eval']['perplexity']:.1f} -> {a['eval']['perplexity']:.1f}, "
            f"top-3 {b['eval']['top3']:.1%} -> {a['eval']['top3']:.1%}{chosen}; general perplexity "
            f"{b['general']['perplexity']:.1f} -> {a['general']['perplexity']:.1f}")
    if report.get("warnings") and "eval_known" in b:
        text += f" (top-3 over known words {b['eval_known']['top3']:.1%} -> {a['eval_known']['top3']:.1%})"
    if "ksr" in report:
        text += f"; KSR {report['ksr']['before']['ksr']:.1%} -> {report['ksr']['after']['ksr']:.1%}"
    if "quantize_fallback_reason" in report:
        text += f"; bundle in {report['bundle_quantization']} ({report['quantize_fallback_reason']})"
    return text + (f" (fine-tune {report['finetune_seconds']:.0f} s, total {report['seconds_total']:.0f} s, "
                   f"peak memory {report['peak_rss_mb']:.0f} MB)")
