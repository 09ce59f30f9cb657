"""The fine-tune itself: the base model on the user's text, in a run directory being written.

Input: the base run, the run directory under construction (``tmp``), the user's messages
split into the text fine-tuned on and the held-out slice, general text, the options.
Output: ``best.keras`` / ``best.json`` / ``logs/train.csv`` / ``metrics.json`` in ``tmp``,
and the before/after figures the report carries.

How: the base's optimizer at a small constant rate, optionally with layers frozen, and an L2 pull
``anchor * sum((w - w_base)^2)`` toward the base weights (``Steps``' penalty); epochs run
through ``keyboard_lm.training.loop.fit`` with early stopping on the held-out slice, and a
checkpoint that saves only epochs beating the base there. The final pass is one more epoch
(``loop.train_epoch``, the loop ``fit`` runs each epoch) over all the user's text. Last,
the forgetting guard (``guard.py``) picks what ships if the general loss rose over the limit.
"""
import dataclasses
import json
import time

from data_pipeline.errors import KblmError
from data_pipeline.textio import atomic_write_text
from data_pipeline.vocab import UNK_ID


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
    from keyboard_lm.training.model import EMBEDDING, OUTPUT, recurrent_layers

    last = recurrent_layers(model, config)[-1]
    for layer in model.layers:
        if how == "embedding" and layer.name in (EMBEDDING, OUTPUT):
            layer.trainable = False
        if how == "all-but-last" and layer.weights and layer is not last:
            layer.trainable = False


def _base_model(base, vocab, model_config, options):
    """(the base's model, its config, its weights), at ``options.dropout`` if that is set."""
    from keyboard_lm.training.model import portable_copy
    from keyboard_lm.training.run import load_run_model

    model = load_run_model(base)  # runs save the shape-agnostic model (portable_copy)
    if model.outputs[0].shape[-1] != len(vocab):
        raise KblmError(f"{base}: the model predicts {model.outputs[0].shape[-1]} ids but the vocabulary "
                        f"has {len(vocab)}; the base run's files do not belong together")
    base_weights = model.get_weights()
    if options.dropout is not None and options.dropout != model_config.dropout:
        # the same network at the new rate (config.json records it)
        model_config = dataclasses.replace(model_config, dropout=options.dropout)
        model = portable_copy(model, model_config)
    return model, model_config, base_weights


def fine_tune(base, tmp, model_config, base_train, vocab, options, train_messages, held_messages,
              eval_messages, general_messages, progress, before_final_pass=lambda: None):
    """Fits, keeps the best epoch, runs the final pass; ``eval_messages`` None: the held-out slice.
    Returns the report's fine-tune part (before/after figures, epochs, time)."""
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
    model, model_config, base_weights = _base_model(base, vocab, model_config, options)
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
    chosen_eval, pass_seconds, chosen_weights = None, None, None
    if options.final_pass and record["epoch"] and (budget is None or seconds < budget):
        # The held-out slice chose the epoch; now the model learns from it too: it is the
        # user's latest text. (best.json's held-out figures describe the epoch before this pass.)
        if eval_messages is None:  # the slice is about to be seen: keep the chosen epoch's figures on it
            chosen_eval = {key[len("val_"):]: value for key, value in record.items() if key.startswith("val_")}
            chosen_known = summarize(evaluate(steps, datasets["eval_known"]))  # the best weights, before the pass
        chosen_weights = model.get_weights()  # the guard's first step back
        before_final_pass()
        pass_started = time.monotonic()
        everything = make_dataset(train_messages + held_messages, vocab, pipeline, training=True)
        _final_pass(steps, everything, None if budget is None else tuned + budget, progress)
        portable_copy(model, model_config).save(paths.best_model)  # without Adam's state
        atomic_write_text(paths.best_record, json.dumps({**record, "final_pass": True}) + "\n")
        pass_seconds = time.monotonic() - pass_started
        seconds = time.monotonic() - tuned
    after = measure()
    guard = _guard(model, model_config, steps, datasets["general"], options.max_forgetting, base_weights,
                   chosen_weights, before["general"]["loss"], after["general"]["loss"])
    if guard and guard["backed_off"]:  # another model ships: save it, measure it (it never saw the slice)
        portable_copy(model, model_config).save(paths.best_model)
        atomic_write_text(paths.best_record, json.dumps({**record, "forgetting_guard": guard["shipped"]}) + "\n")
        after, chosen_eval, pass_seconds = measure(), None, None
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
            "trainable_parameters": metrics["trainable_parameters"], "best_epoch": metrics["best"].get("epoch"),
            "forgetting_guard": guard}


def _guard(model, model_config, steps, general, limit, base_weights, chosen_weights, base_loss, final_loss):
    """Applies the forgetting guard (personalize/guard.py) to ``model``; its record, or None when off."""
    from keyboard_lm.personalize.guard import limit_forgetting
    from keyboard_lm.training.loop import evaluate
    from keyboard_lm.training.metrics import summarize

    if limit is None:
        return None

    def general_loss(weights):
        model.set_weights(weights)
        return summarize(evaluate(steps, general))["loss"]

    shipped, record = limit_forgetting(model.get_weights(), chosen_weights, base_weights, general_loss,
                                       base_loss, limit, final_loss)
    model.set_weights(shipped)
    return record


def _final_pass(steps, everything, deadline, progress):
    """One more epoch over ``everything`` (one pass, no validation), through the loop ``fit`` runs
    each epoch. Adam's moments carry over from the last epoch trained, as they would in one more
    epoch; the time budget (``deadline``) covers the pass too."""
    from data_pipeline.progress import progress as tqdm
    from keyboard_lm.training.loop import train_epoch

    def diverged(loss, step):
        return f"the final pass diverged (loss {loss}); rerun with a lower --learning-rate or --no-final-pass"

    batches = tqdm(everything, desc="final pass", unit=" batch", disable=not progress)
    train_epoch(steps, batches, deadline=deadline, diverged=diverged)
