"""The Keras callbacks a run uses, and the two small ones Keras lacks.

Hand-written (Keras has no equivalent): ``AtomicModelCheckpoint`` (ModelCheckpoint's
best-model logic, but written to a temp file and renamed, so a killed save never leaves a
corrupt best model) and ``CurvePlot`` (re-draws the training-curve PNG each epoch).
"""
import json
import os
from pathlib import Path

import keras

from data_pipeline.textio import atomic_write_text
from keyboard_lm.training.model import portable_copy
from keyboard_lm.training.plots import plot_curves

MONITOR = "val_perplexity"


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """Saves the best model to ``filepath`` atomically and records it in ``best.json``."""

    def __init__(self, filepath, record_path, model_config, **kwargs):
        super().__init__(filepath, monitor=MONITOR, mode="min", save_best_only=True, **kwargs)
        self.record_path = Path(record_path)
        self.model_config = model_config

    def _save_model(self, epoch, batch, logs):
        # Keras decides (monitor, mode, initial_value_threshold) and tracks self.best.
        if not self._should_save_model(epoch, batch, logs, self.filepath):
            return
        path = Path(self.filepath)
        tmp = path.with_name(f".{path.stem}.tmp.keras")
        portable_copy(self.model, self.model_config).save(tmp, overwrite=True)  # weights only
        os.replace(tmp, path)
        record = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        atomic_write_text(self.record_path, json.dumps(record, indent=2) + "\n")


class CurvePlot(keras.callbacks.Callback):
    """Re-draws ``png_path`` from the CSV log after every epoch."""

    def __init__(self, csv_path, png_path, title):
        super().__init__()
        self.csv_path, self.png_path, self.title = csv_path, png_path, title

    def on_epoch_end(self, epoch, logs=None):
        if Path(self.csv_path).exists():
            plot_curves(self.csv_path, self.png_path, self.title)


def best_so_far(record_path):
    """The monitored value of a run's best model, to resume ModelCheckpoint from."""
    try:
        return json.loads(Path(record_path).read_text())[MONITOR]
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        return None


def run_callbacks(paths, config, model_config, resume, title):
    """The callback list of a run (each worker of a multi-worker run has its own run dir)."""
    paths.csv_log.parent.mkdir(parents=True, exist_ok=True)
    callbacks = [  # the best model is saved before the backup marks the epoch done
        AtomicModelCheckpoint(str(paths.best_model), paths.best_record, model_config,
                              initial_value_threshold=best_so_far(paths.best_record) if resume else None),
        keras.callbacks.BackupAndRestore(str(paths.backup)),
        keras.callbacks.CSVLogger(str(paths.csv_log), append=resume),
        keras.callbacks.TensorBoard(str(paths.tensorboard), write_graph=False),
        CurvePlot(paths.csv_log, paths.curves, title),
    ]
    callbacks.append(keras.callbacks.EarlyStopping(MONITOR, mode="min",
                                                   patience=config.early_stopping_patience))
    if config.schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            MONITOR, mode="min", factor=0.5, patience=0, min_lr=config.learning_rate / 64, verbose=1))
    return callbacks


class PlainProgress(keras.callbacks.Callback):
    """Training progress as plain lines, for logs and pipes.

    Keras's progress bar redraws itself with backspaces and colour codes even when the output
    is a file (it counts any POSIX system as a terminal), which leaves lines of 200,000+
    characters in a log. This prints one line at most every ``interval`` seconds and one at
    each epoch's end."""

    def __init__(self, interval=30.0, stream=None):
        super().__init__()
        self.interval, self.stream = interval, stream

    def _print(self, text):
        import sys

        print(text, file=self.stream or sys.stdout, flush=True)

    def on_epoch_begin(self, epoch, logs=None):
        import time

        self.epoch, self.started = epoch, time.monotonic()
        self.last = self.started

    def on_train_batch_end(self, batch, logs=None):
        import time

        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            steps = self.params.get("steps")
            self._print(f"epoch {self.epoch + 1}/{self.params.get('epochs')}: step {batch + 1}"
                        f"{f'/{steps}' if steps else ''}, {now - self.started:.0f} s" + _format_logs(logs))

    def on_epoch_end(self, epoch, logs=None):
        import time

        self._print(f"epoch {epoch + 1}/{self.params.get('epochs')} done in "
                    f"{time.monotonic() - self.started:.0f} s" + _format_logs(logs))


def _format_logs(logs):
    return "".join(f", {k} {float(v):.4g}" for k, v in (logs or {}).items())


def progress_options(progress, interval=30.0):
    """``CallbackList`` keyword arguments and extra callbacks for the progress display:
    Keras's bar on a terminal, ``PlainProgress`` lines elsewhere, nothing if not ``progress``."""
    import sys

    if not progress:
        return {"add_progbar": False, "verbose": 0}, []
    if sys.stdout.isatty():
        return {"add_progbar": True, "verbose": 1}, []
    return {"add_progbar": False, "verbose": 0}, [PlainProgress(interval)]
