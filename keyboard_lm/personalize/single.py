"""``personalize``: one user, from their text to a personalized run, its bundle and report.json.

Input: the base run, the user's text (file or directory), the options; optionally other
text to measure on (``eval_texts``), general text for the forgetting check, the base's
bundle. Output: the run directory ``out`` (see the package's docstring), written in a
temp directory and renamed at the end, and the report (also ``out/report.json``).
"""
import dataclasses
import json
import resource
import shutil
import sys
import time
from pathlib import Path

from data_pipeline.errors import KblmError
from data_pipeline.textio import atomic_directory, atomic_write_text
from keyboard_lm.personalize.fine_tune import fine_tune, set_threads
from keyboard_lm.personalize.options import (PersonalizeOptions, check_user_text, split_user_text,
                                             unknown_words_warnings)
from keyboard_lm.personalize.report import keystroke_savings


def general_messages(base, general, limit, cache_dir):
    """The general messages of the forgetting check: ``general`` (corpus name, file or list of
    messages), else the base corpus's test split; at most ``limit``."""
    from data_pipeline.corpora import load_corpus, read_messages
    from keyboard_lm.training.run import read_json

    if isinstance(general, list):  # the messages themselves (a cluster ships them to the task)
        messages = general
    elif general:
        messages = read_messages(general) if Path(general).exists() else load_corpus(general, cache_dir).splits["test"]
    else:
        spec = read_json(Path(base) / "config.json", "the run's config")["corpus"]["spec"]
        messages = load_corpus(spec, cache_dir).splits["test"]
    return messages[:limit]


def personalize(base, texts, out, options=PersonalizeOptions(), eval_texts=None, general=None,
                base_bundle=None, cache_dir=None, progress=True, recorded_as=None):
    """Fine-tunes ``base`` on the user's ``texts`` into the run ``out``; returns the report.
    ``general``: a corpus name, a file, or a list of messages. ``recorded_as``: {"base": ...,
    "texts": ...}, the names config.json records when the task works on copies (a cluster node)."""
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
    general_texts = general_messages(base, general, options.general_limit, cache_dir)
    if Path(out).resolve() == Path(base).resolve():
        raise KblmError(f"{out}: is the base run; choose another --out")
    with atomic_directory(out) as tmp:
        shutil.copytree(Path(base) / "vocab", tmp / "vocab")
        names = {"base": str(base), "texts": str(texts), **(recorded_as or {})}
        personalization = {"base": names["base"], "texts": names["texts"], "eval_texts": str(eval_texts or ""),
                           "options": dataclasses.asdict(options), "words": words, "known_words": known,
                           "train_messages": len(train_messages), "held_out_messages": len(held_messages)}
        model_section = raw["model"] if options.dropout is None else {**raw["model"], "dropout": options.dropout}
        atomic_write_text(tmp / "config.json", json.dumps({**raw, "model": model_section,
                                                           "personalization": personalization}, indent=2) + "\n")
        replayed = tmp / "bundle"  # the bundle the KSR replay measures

        def before_final_pass():  # the held-out slice is about to be trained on: keep its view
            nonlocal replayed
            if eval_texts is None and options.quantize and options.ksr_limit:
                replayed = tmp / ".chosen-epoch-bundle"  # measured, never shipped: no train signature
                _export_bundle(tmp, options, replayed, cache_dir, adapter_rank=0)

        result = fine_tune(base, tmp, model_config, base_train, vocab, options, train_messages, held_messages,
                           eval_messages if eval_texts else None, general_texts, progress, before_final_pass)
        report = {"user": Path(texts).stem if texts else Path(out).name, "words": words,
                  "known_words": known, **result, "warnings": warnings}
        if (result["forgetting_guard"] or {}).get("backed_off"):
            replayed = tmp / "bundle"  # the shipped model never saw the held-out slice: replay it
        if options.quantize:
            report["bundle_quantization"], fallback_reason = _export_bundle(tmp, options, tmp / "bundle", cache_dir)
            if fallback_reason:
                report["quantize_fallback_reason"] = fallback_reason
            if options.ksr_limit:
                report["ksr"] = keystroke_savings(base, base_bundle, replayed, options.quantize,
                                                  eval_messages[:options.ksr_limit], cache_dir, prime=train_messages)
        shutil.rmtree(tmp / ".chosen-epoch-bundle", ignore_errors=True)
        report["seconds_total"] = round(time.monotonic() - started, 1)
        report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        atomic_write_text(tmp / "report.json", json.dumps(report, indent=2) + "\n")
    return report


def _export_bundle(run, options, out, cache_dir, adapter_rank=None):
    """Exports ``run`` as ``options.quantize``, or as the fallback mode if that loses more
    top-3 accuracy than the export allows; returns (mode, why the fallback was used or None).
    ``adapter_rank``: the export's (None: its default, a bundle the phone can adapt)."""
    from export.exporter import QuantizationLoss, export_run
    from keyboard_lm.phone.bundle import DEFAULT_ADAPTER_RANK

    rank = DEFAULT_ADAPTER_RANK if adapter_rank is None else adapter_rank
    try:
        export_run(run, options.quantize, out, cache_dir=cache_dir, adapter_rank=rank)
        return options.quantize, None
    except QuantizationLoss as error:
        if not options.quantize_fallback or options.quantize_fallback == options.quantize:
            raise KblmError(f"{error} (kblm personalize: --quantize another mode, or "
                            "--quantize-fallback float16)") from None
        export_run(run, options.quantize_fallback, out, cache_dir=cache_dir, adapter_rank=rank)
        return options.quantize_fallback, str(error).split(";")[0]
