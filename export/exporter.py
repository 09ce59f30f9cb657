"""``kblm export``: a run's best model -> quantized, verified TFLite bundle.

Input: a run directory (``keyboard_lm.training.run``). Output: a bundle (``export.bundle``) whose
manifest records the step model's layout and its measured quality on held-out text next
to the float Keras model's. A mode that loses more than ``tolerance`` (relative top-3) is
refused unless forced.
"""
import hashlib
import json
import time
import warnings

import numpy as np

from data_pipeline.errors import KblmError
from data_pipeline.tokenization import split_sentences
from data_pipeline.vocab import BOS_ID, EOS_ID
from export import tflite
from export.bundle import write_bundle
from export.adapter_model import build_adaptable_model
from export.step_model import build_step_model
from keyboard_lm.phone.bundle import DEFAULT_ADAPTER_RANK, DEFAULT_GENERAL_MESSAGES, DEFAULT_STRIP_SIZE, GENERAL_FILE
from keyboard_lm.phone.runtime import StepRunner, score_messages, signature_tensors
from keyboard_lm.training.metrics import summarize

REFERENCE_BATCH = 64


def sentence_ids(messages, vocab, limit):
    """<bos> ids <eos> per sentence with at least one token, by the phone's own tokenizer."""
    encoded = []
    for message in messages:
        for sentence in split_sentences(message):
            ids = vocab.encode(sentence)
            if ids:
                encoded.append([BOS_ID, *ids, EOS_ID])
        if len(encoded) >= limit:
            return encoded[:limit]
    return encoded


def general_sample(messages, vocab, limit):
    """The first ``limit`` messages with a token, each on one line (§18.3's general sample)."""
    out = []
    for message in messages:
        line = " ".join(message.split())  # one line, whatever whitespace the corpus had
        if any(vocab.encode(sentence) for sentence in split_sentences(line)):
            out.append(line)
            if len(out) == limit:
                break
    return out


def keras_reference(model, model_config, messages_ids):
    """Float Keras metrics on whole messages from an empty state (what the step loop does)."""
    import keras

    from keyboard_lm.training.metrics import next_word_sums
    from keyboard_lm.training.model import zero_states

    total = {}
    for start in range(0, len(messages_ids), REFERENCE_BATCH):
        chunk = messages_ids[start:start + REFERENCE_BATCH]
        width = max(len(ids) for ids in chunk)
        window = np.zeros((len(chunk), width), np.int32)
        for row, ids in enumerate(chunk):
            window[row, :len(ids)] = ids
        inputs, targets = window[:, :-1], window[:, 1:]
        logits, *_ = model([keras.ops.convert_to_tensor(inputs), *zero_states(model_config, len(chunk))])
        sums = next_word_sums(targets, logits, (targets != 0).astype(np.float32))
        for key, value in sums.items():
            total[key] = total.get(key, 0.0) + float(value)
    return total


class QuantizationLoss(KblmError):
    """The quantized model loses more top-3 accuracy than the tolerance allows."""


def export_run(run_dir, mode, out, make_zip=False, force=False, tolerance=0.01, sample_messages=300,
               cache_dir=None, strip_size=DEFAULT_STRIP_SIZE, lexicon="train", lexicon_size=None,
               adapter_rank=DEFAULT_ADAPTER_RANK, general_messages=DEFAULT_GENERAL_MESSAGES):
    """Exports the run's best model in ``mode`` to the bundle ``out``; returns the manifest.
    ``strip_size``: words on the phone's suggestion strip, recorded in the manifest.
    ``lexicon``: train | none | wordfreq:LANG, ``lexicon_size``: at most that many words
    (export.lexicon; no lexicon file when no word is left). ``adapter_rank``: the rank of the
    personal adapter the ``step`` and ``train`` signatures take (docs/engine.md §18); 0, or an
    int8/int16x8 mode (whose integer graph cannot train): neither, the step model alone.
    ``general_messages``: how many of the validation split's messages the bundle carries for the
    adapter's forgetting guard (docs/engine.md §18.3; 0: none, the phone runs no guard)."""
    from export.lexicon import build_lexicon, lexicon_file, parse_source
    from data_pipeline.corpora import load_corpus
    from keyboard_lm.training.run import load_run

    tflite.check_mode(mode)
    parse_source(lexicon)  # a bad --lexicon is refused before anything is converted
    run = load_run(run_dir)
    model_config, train_config, raw = run.model_config, run.train_config, run.raw
    vocab, model = run.vocab, run.model
    corpus = load_corpus(raw["corpus"]["spec"], cache_dir)
    layout = model_config.state_layout()
    parameters = int(model.count_params())

    if not isinstance(adapter_rank, int) or adapter_rank < 0:
        raise KblmError(f"--adapter-rank must be a whole number >= 0; got {adapter_rank!r}")
    if not isinstance(general_messages, int) or general_messages < 0:
        raise KblmError(f"--general-messages must be a whole number >= 0; got {general_messages!r}")
    adapter = None
    if adapter_rank and mode not in ("int8", "int16x8"):  # constants only: no cuDNN op, no variables
        step_model = build_adaptable_model(model, model_config, adapter_rank)
        adapter = step_model.block()
        extra = step_model.graph_allowance()
    else:
        step_model, extra = build_step_model(model, model_config), 0
    representative = None
    if mode in ("int8", "int16x8"):  # calibrated on states of the float model's own step loop
        float_bytes = tflite.convert(step_model, "float32")
        tflite.check_model(float_bytes, "float32", parameters, extra)
        train_ids = sentence_ids(corpus.splits["train"], vocab, 200)
        representative = tflite.representative_samples(StepRunner(float_bytes, layout), train_ids)
    model_bytes = tflite.convert(step_model, mode, representative)
    ops = tflite.check_model(model_bytes, mode, parameters, extra)

    held_out = sentence_ids(corpus.splits["test"], vocab, sample_messages)
    if not held_out:
        raise KblmError(f"corpus {corpus.name}: the test split has no tokens to measure the export on")
    reference = summarize(keras_reference(model, model_config, held_out))
    measured = summarize(score_messages(StepRunner(model_bytes, layout, adapter=adapter), held_out))
    change = (measured["top3"] - reference["top3"]) / max(reference["top3"], 1e-9)
    if change < -tolerance:
        message = (f"{mode} loses {-change:.2%} relative top-3 accuracy on held-out text "
                   f"({reference['top3']:.4f} -> {measured['top3']:.4f}), more than the tolerance "
                   f"{tolerance:.2%}")
        if not force:
            raise QuantizationLoss(message + "; choose another mode, raise --tolerance, or pass --force")
        warnings.warn(message + " (exported anyway: --force)", stacklevel=2)

    kind, _ = parse_source(lexicon)
    sources = [] if kind == "none" else ["train"] + ([lexicon] if kind == "wordfreq" else [])
    lexicon_bytes, lexicon_block = lexicon_file(build_lexicon(corpus.splits["train"], vocab, lexicon, lexicon_size),
                                                sources)
    general = None
    if adapter and general_messages:  # the forgetting guard's sample: the validation split, public text
        general = general_sample(corpus.splits["valid"], vocab, general_messages)
        adapter = {**adapter, "general": {"file": GENERAL_FILE, "messages": len(general)}} if general else adapter
    paths = run.paths
    manifest = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quantization": mode,
        # How training framed sentences: "reset" (message mode: every sentence starts from an
        # empty state) or "carry" (stream mode: the state runs on across sentences).
        "sentence_context": "carry" if train_config.pipeline.mode == "stream" else "reset",
        "engine": {"strip_size": strip_size},  # the phone engine's options (docs/engine.md §3)
        **({"lexicon": lexicon_block} if lexicon_block else {}),  # docs/engine.md §16
        **({"adapter": adapter} if adapter else {}),  # docs/engine.md §18: the step's adapter, the train signature
        "tokenizer": vocab.metadata["tokenizer"],
        "special_ids": vocab.metadata["special_ids"],
        "model": raw["model"],
        "signature": {
            "name": "step",
            **dict(zip(("inputs", "outputs"), signature_tensors(layout, model_config.vocabulary_size, adapter))),
            "states": [{"name": name, "size": size} for name, size in layout],
            "vocabulary_size": model_config.vocabulary_size,
        },
        "parameters": parameters,
        "ops": {op: ops.count(op) for op in sorted(set(ops))},
        "metrics": {
            "held_out": f"{corpus.name} test split, first {len(held_out)} messages with tokens",
            "keras_float32": reference, "tflite": measured, "top3_relative_change": change,
            "tolerance": tolerance, "forced": bool(force and change < -tolerance)},
        "run": {"path": str(paths.root), "corpus": raw["corpus"],
                "config_sha256": hashlib.sha256(paths.config.read_bytes()).hexdigest(),
                "best": json.loads(paths.best_record.read_text()) if paths.best_record.exists() else None},
    }
    return write_bundle(out, model_bytes, paths.vocab, manifest, make_zip, lexicon_bytes, general or None)
