"""The personal adapter: its file, and the phone's training loop over the ``train`` signature.

numpy + ai_edge_litert only (what the phone runs); docs/engine.md §18 is the spec, and
``android_demo/core`` (``Adapter.java``, ``AdapterTraining.java``) its Java twin.

Input: a bundle whose manifest has an ``adapter`` block (``kblm export`` writes one) and the
user's committed messages, oldest first. Output: an adapter file (``.kbad``) tied to that
bundle by its model's sha256, which ``kblm suggest / type / simulate --adapter`` load and
every step then adds to the logits. The loop is the one the phone runs at night: pass 0
scores the base, epochs train on all but a held-out tail, the best epoch is kept, and an
adapter that does not beat the base on the held-out tail is never written.
"""
import dataclasses
import hashlib
import json
import math
import resource
import struct
import time
from pathlib import Path

import numpy as np

from data_pipeline.errors import KblmError
from data_pipeline.textio import atomic_write_bytes
from data_pipeline.tokenization import split_sentences
from data_pipeline.vocab import BOS_ID, EOS_ID
from keyboard_lm.phone.bundle import ADAPTER_FILE_FORMAT, ADAPTER_PARAMETERS

MAGIC = b"KBLMADAP"
DTYPE = "float16"  # stored; computed in float32
MIN_TRAIN_TARGETS = 300
MIN_HELD_OUT_TARGETS = 30
BISECTIONS = 5  # the guard's blend weight to 1/32, as the server's guard (keyboard_lm/personalize/guard.py)


@dataclasses.dataclass(frozen=True)
class AdaptOptions:
    """The loop's settings (docs/engine.md §18.3)."""
    epochs: int = 10
    learning_rate: float = 0.003
    l2: float = 0.01
    held_out: float = 0.1
    seed: int = 0
    max_forgetting: float | None = 0.02  # §18.3's guard on the bundle's general sample (None: off)


class TooShort(KblmError):
    """Not enough text to train on: nothing was trained."""


# ---------------------------------------------------------------- the file (§18.4)

def save_adapter(path, bundle, arrays, training=None):
    """Writes ``arrays`` ({name: array of the manifest's shapes}) as a .kbad file for ``bundle``
    (temp path, then rename); returns the bytes written."""
    block = bundle.adapter_block
    payload = b"".join(np.ascontiguousarray(arrays[name], "<f2").tobytes() for name in ADAPTER_PARAMETERS)
    header = {"format_version": ADAPTER_FILE_FORMAT, "bundle_model_sha256": bundle.model_sha256,
              "rank": block["rank"], "feature_size": block["feature_size"],
              "vocabulary_size": block["parameters"][0]["shape"][0], "dtype": DTYPE,
              "arrays": [{"name": p["name"], "shape": p["shape"]} for p in block["parameters"]],
              "payload_sha256": hashlib.sha256(payload).hexdigest(), "training": training or {}}
    text = json.dumps(header, indent=1).encode("utf-8")
    data = MAGIC + struct.pack("<I", len(text)) + text + payload
    atomic_write_bytes(path, data)
    return len(data)


def load_adapter(path, bundle):
    """Reads and checks a .kbad file against ``bundle``: {name: float32 array}, and its header.
    Any fault is one KblmError naming the file and the field (docs/engine.md §18.4)."""
    path = Path(path)
    where = str(path)
    block = bundle.adapter_block
    if block is None:
        raise KblmError(f"{where}: the bundle {bundle.names('manifest.json')} has no adapter block; "
                        "it cannot run an adapter (re-export it with this keyboard-lm)")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KblmError(f"{where}: no such adapter file") from None
    except IsADirectoryError:
        raise KblmError(f"{where}: is a directory, not an adapter file") from None
    if data[:8] != MAGIC:
        raise KblmError(f"{where}: not a keyboard-lm adapter (it does not start with {MAGIC.decode()})")
    if len(data) < 12:
        raise KblmError(f"{where}: truncated (no header length)")
    (length,) = struct.unpack("<I", data[8:12])
    if 12 + length > len(data):
        raise KblmError(f"{where}: truncated (the header says {length:,} bytes; the file ends first)")
    try:
        header = json.loads(data[12:12 + length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise KblmError(f"{where}: header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise KblmError(f"{where}: header must be a JSON object")

    def field(name, check, what):
        value = header.get(name)
        if not check(value):
            raise KblmError(f"{where}: field {name} must be {what}, not {json.dumps(value)[:80]}")
        return value

    field("format_version", lambda v: v == ADAPTER_FILE_FORMAT and type(v) is int,
          f"{ADAPTER_FILE_FORMAT} (the adapter file format this keyboard-lm reads)")
    field("bundle_model_sha256", lambda v: v == bundle.model_sha256,
          f"the sha256 of {bundle.names('model.tflite')} ({bundle.model_sha256[:12]}…): the adapter was "
          "trained for another bundle")
    field("dtype", lambda v: v == DTYPE, f'"{DTYPE}"')
    expected = [{"name": p["name"], "shape": p["shape"]} for p in block["parameters"]]
    field("arrays", lambda v: v == expected,
          "the bundle's adapter arrays (" + ", ".join(f"{p['name']} {p['shape']}" for p in expected) + ")")
    field("rank", lambda v: v == block["rank"] and type(v) is int, f"the bundle's rank {block['rank']}")
    field("feature_size", lambda v: v == block["feature_size"] and type(v) is int,
          f"the bundle's feature size {block['feature_size']}")
    payload = data[12 + length:]
    sizes = [int(np.prod(p["shape"])) for p in expected]
    if len(payload) != 2 * sum(sizes):
        raise KblmError(f"{where}: payload is {len(payload):,} bytes; the arrays need {2 * sum(sizes):,} "
                        "(truncated or corrupt)")
    field("payload_sha256", lambda v: v == hashlib.sha256(payload).hexdigest(),
          "the payload's sha256 (the file is corrupt)")
    arrays, offset = {}, 0
    for p, size in zip(expected, sizes):
        values = np.frombuffer(payload, "<f2", size, offset).astype(np.float32).reshape(p["shape"])
        if not np.isfinite(values).all():
            raise KblmError(f"{where}: array {p['name']} holds values that are not finite")
        arrays[p["name"]], offset = values, offset + 2 * size
    return arrays, header


def stored(arrays):
    """The arrays as the file holds them (float16, back to float32): what the phone will run."""
    return {k: np.asarray(v, np.float16).astype(np.float32) for k, v in arrays.items()}


# ---------------------------------------------------------------- the windows (§18.3)

@dataclasses.dataclass
class Window:
    tokens: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    reset: np.ndarray  # 1 where a stream starts from zero states
    first: bool  # the first window of its part: starts from zero states (else from the previous window's end)
    start: dict = None  # the states at its start, recorded by pass 0

    @property
    def count(self):
        return float(self.mask.sum())


def streams_of(messages, vocab, carry):
    """The messages' streams (§18.3): each sentence ``<bos> ids <eos>`` (``reset``), or a
    message's sentences end to end (``carry``: ``<bos> ... <eos> <bos> ... <eos>``, as stream
    training and the engine feed it)."""
    out = []
    for message in messages:
        sentences = [[BOS_ID, *ids, EOS_ID] for ids in map(vocab.encode, split_sentences(message)) if ids]
        out.extend([sum(sentences, [])] if carry and sentences else sentences)
    return out


def windows_of(messages, vocab, window, carry):
    """The messages' streams packed into windows of ``window`` positions (§18.3): laid end to
    end, ``reset`` 1 at each stream's first position; only the last window is padded."""
    tokens, targets, reset = [], [], []
    for ids in streams_of(messages, vocab, carry):
        tokens += ids[:-1]
        targets += ids[1:]
        reset += [1.0] + [0.0] * (len(ids) - 2)
    out = []
    for start in range(0, len(tokens), window):
        n = len(tokens[start:start + window])
        w = Window(np.zeros(window, np.int32), np.zeros(window, np.int32), np.zeros(window, np.float32),
                   np.zeros(window, np.float32), first=start == 0)
        w.tokens[:n], w.targets[:n] = tokens[start:start + window], targets[start:start + window]
        w.mask[:n], w.reset[:n] = 1.0, reset[start:start + window]
        out.append(w)
    return out


def split_messages(messages, held_out):
    count = max(1, round(held_out * len(messages)))
    return messages[:-count] if count < len(messages) else [], messages[-count:]


# ---------------------------------------------------------------- the loop (§18.3)

def peak_memory_mb():
    """This process's peak resident memory: VmHWM where Linux has it (getrusage's maxrss
    counts a forking parent's memory too, so a 100 MB run started from a 1.5 GB process
    would report 1.5 GB), else maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def initial_adapter(shapes, seed):
    rng = np.random.default_rng(seed)
    features = shapes["adapter_down"][0]
    return {"adapter_bias": np.zeros(shapes["adapter_bias"], np.float32),
            "adapter_down": (rng.standard_normal(shapes["adapter_down"]) / math.sqrt(features)).astype(np.float32),
            "adapter_up": np.zeros(shapes["adapter_up"], np.float32)}


def _finite(loss, arrays):
    return math.isfinite(loss) and all(np.isfinite(a).all() for a in arrays.values())


def scaled(arrays, a):
    """The adapter blended toward the base (§18.3): its term in the logits times ``a``."""
    return stored({**arrays, "adapter_bias": arrays["adapter_bias"] * a, "adapter_up": arrays["adapter_up"] * a})


def limit_forgetting(arrays, general_loss, base_loss, limit):
    """§18.3's guard: (the arrays to ship or None, a record). ``general_loss(arrays)`` scores
    the bundle's general sample; the adapter ships as trained if its rise is within ``limit``,
    else scaled by the largest ``a`` that bisection measured within it (none: nothing ships)."""
    ceiling = base_loss * (1.0 + limit)
    trained = general_loss(arrays)
    record = {"limit": limit, "base_general_loss": base_loss, "trained_general_loss": trained,
              "trained_rise": trained / base_loss - 1.0, "blend": 1.0, "general_loss": trained}
    if trained <= ceiling:
        record.update(rise=record["trained_rise"], what="within the limit: shipped as trained")
        return arrays, record
    low, high, chosen = 0.0, 1.0, None
    for _ in range(BISECTIONS):
        middle = (low + high) / 2
        candidate = scaled(arrays, middle)
        loss = general_loss(candidate)
        if loss <= ceiling:
            low, chosen = middle, (candidate, loss)
        else:
            high = middle
    if chosen is None:
        record.update(blend=0.0, general_loss=base_loss, rise=0.0,
                      what=f"it forgot too much general text (its general loss rose {record['trained_rise']:.1%}, "
                           f"and still more than {limit:.1%} at {high:g} of it)")
        return None, record
    record.update(blend=low, general_loss=chosen[1], rise=chosen[1] / base_loss - 1.0,
                  what=f"its general loss rose {record['trained_rise']:.1%} as trained, over the {limit:.1%} limit: "
                       f"shipped at {low:g} of its strength")
    return chosen[0], record


def adapt(bundle, messages, options=AdaptOptions(), progress=None, num_threads=1):
    """Trains an adapter for ``bundle`` on ``messages`` (oldest first) with the LiteRT
    ``train`` signature. Returns a result dict: ``shipped`` (bool), ``reason``, ``arrays``
    (the best adapter, float16-rounded, if shipped), the base and best held-out losses,
    the losses per epoch, targets, seconds and peak memory. Raises TooShort."""
    started = time.perf_counter()
    trainer = bundle.trainer(num_threads)
    carry = bundle.manifest.get("sentence_context", "reset") == "carry"
    train_messages, held_messages = split_messages(messages, options.held_out)
    train_windows = windows_of(train_messages, bundle.vocab, trainer.window, carry)
    held_windows = windows_of(held_messages, bundle.vocab, trainer.window, carry)
    train_targets = sum(w.count for w in train_windows)
    held_targets = sum(w.count for w in held_windows)
    if train_targets < MIN_TRAIN_TARGETS or held_targets < MIN_HELD_OUT_TARGETS:
        raise TooShort(f"too little text to train an adapter: {int(train_targets):,} training and "
                       f"{int(held_targets):,} held-out words and sentence ends (at least {MIN_TRAIN_TARGETS} "
                       f"and {MIN_HELD_OUT_TARGETS} needed); nothing trained")
    zeros = trainer.zeros()

    def run(windows, params, learning_rate, moments=None, record=False):
        """One pass; returns (mean loss weighted by targets, params, moments)."""
        m, v, count = moments or (zeros, zeros, 0.0)
        total = weight = 0.0
        states = None
        for w in windows:
            if record:
                states = ({name: np.zeros((1, size), np.float32) for name, size in trainer.layout}
                          if w.first else states)
                w.start = states
            loss, new_params, m, v, count, states = trainer.train(
                w.tokens, w.targets, w.mask, w.reset, w.start, params, m, v, count, learning_rate, options.l2)
            if not _finite(loss, new_params):
                return float("nan"), params, (m, v, count)
            params = new_params if learning_rate else params
            total += loss * w.count
            weight += w.count
            if progress is not None:
                progress.update(1)
        return total / max(weight, 1.0), params, (m, v, count)

    base_held, _, _ = run(held_windows, zeros, 0.0, record=True)  # pass 0: the base's held-out loss
    general_windows = (windows_of(bundle.general_messages, bundle.vocab, trainer.window, carry)
                       if bundle.general_messages and options.max_forgetting is not None else [])
    base_general = run(general_windows, zeros, 0.0, record=True)[0] if general_windows else None
    params = initial_adapter(trainer.shapes, options.seed)
    best, best_loss, moments, epochs, reason = None, base_held, None, [], None
    broken = [f"{what} loss is {loss}" for what, loss in (("held-out", base_held), ("general", base_general))
              if loss is not None and not math.isfinite(loss)]
    epochs_to_run = 0 if broken else options.epochs  # (a base that cannot score the text: nothing to train)
    for epoch in range(1, epochs_to_run + 1):  # epoch 1 records the training windows' start states
        train_loss, candidate, moments = run(train_windows, params, options.learning_rate, moments,
                                             record=epoch == 1)
        held = run(held_windows, stored(candidate), 0.0)[0] if math.isfinite(train_loss) else float("nan")
        epochs.append({"epoch": epoch, "train_loss": train_loss, "held_out_loss": held})
        if not math.isfinite(held):
            reason = f"epoch {epoch} diverged (a loss or parameter is not finite); it is thrown away"
            break
        params = candidate
        if held >= best_loss:
            reason = f"epoch {epoch} did not improve the held-out loss; stopped"
            break
        best, best_loss = stored(candidate), held
    shipped = best is not None
    if broken:  # a model that cannot score the text cannot be adapted (the Java loop: DIVERGED)
        reason = f"the base model's {broken[0]}; nothing trained"
    elif not shipped:
        reason = (f"the adapter's held-out loss never went below the base's ({base_held:.4f}); "
                  "no adapter written" + (f" ({reason})" if reason else ""))
    guard = None
    if shipped and general_windows:
        best, guard = limit_forgetting(best, lambda arrays: run(general_windows, arrays, 0.0)[0], base_general,
                                       options.max_forgetting)
        shipped = best is not None
        if not shipped:
            reason = guard["what"] + "; no adapter written"
        elif guard["blend"] < 1:
            best_loss = run(held_windows, best, 0.0)[0]
    return {"shipped": shipped, "reason": reason or f"trained {options.epochs} epochs", "arrays": best, "guard": guard,
            "base_held_out_loss": base_held, "held_out_loss": best_loss,
            "epochs": epochs, "train_targets": int(train_targets), "held_out_targets": int(held_targets),
            "messages": len(messages), "windows": len(train_windows) + len(held_windows), "held_out_windows": len(held_windows),
            "seconds": time.perf_counter() - started,
            "peak_memory_mb": peak_memory_mb(),
            "options": dataclasses.asdict(options)}
