"""Running the step model in LiteRT, and scoring it on text. numpy + ai_edge_litert only.

Input: .tflite bytes (or a path) and the state layout from the manifest. Output: a
``StepRunner`` that holds the recurrent state and returns log-probabilities one token at a
time, the loop the phone runs. ``score_messages`` measures perplexity and top-k with it.

The runner checks on creation that the model loads and that its ``step`` signature has
exactly the inputs and outputs the layout implies (names, dtypes, shapes): a bad model is a
one-line KblmError then, not a crash at the first step. LiteRT's C++ start-up chatter
("Created TensorFlow Lite XNNPACK delegate for CPU.") is kept off the console unless
KBLM_VERBOSE=1 (what ``kblm --verbose`` sets).
"""
import contextlib
import os

import numpy as np

from data_pipeline.errors import KblmError
from keyboard_lm.phone.native_output import captured_output, verbose

SIGNATURE = "step"


def signature_tensors(state_layout, vocabulary_size, adapter=None):
    """The step signature's inputs and outputs as the manifest lists them:
    ``[{"name", "shape", "dtype"}]`` each (``vocabulary_size`` None: any). ``adapter``: the
    manifest's adapter block, whose arrays are inputs too (docs/engine.md §18.1)."""
    states = [(name, int(size)) for name, size in state_layout]
    inputs = [{"name": "token", "shape": [1], "dtype": "int32"}] + \
             [{"name": name, "shape": [1, size], "dtype": "float32"} for name, size in states] + \
             [{"name": p["name"], "shape": list(p["shape"]), "dtype": "float32"}
              for p in (adapter or {}).get("parameters", [])]
    outputs = [{"name": "log_probs", "shape": [1, vocabulary_size], "dtype": "float32"}] + \
              [{"name": f"next_{name}", "shape": [1, size], "dtype": "float32"} for name, size in states]
    return inputs, outputs


@contextlib.contextmanager
def native_output_captured():
    """Sends the process's C-level stdout and stderr (file descriptors 1 and 2) to a temporary
    file for the block (``native_output.captured_output``), so LiteRT's C++ log lines stay off
    the console; restores both on every path. Yields a list that holds the captured text once
    the block has ended. If the block raises, the captured text is replayed on stderr first.
    With KBLM_VERBOSE nothing is captured."""
    captured = []
    if verbose():
        yield captured
        return
    capture = None
    try:
        with captured_output((1, 2)) as capture:
            yield captured
    except BaseException:
        if capture is not None and capture.text:
            with contextlib.suppress(OSError):
                os.write(2, capture.text.encode("utf-8", "replace"))
        raise
    finally:
        if capture is not None and capture.active:
            captured.append(capture.text)


def one_line(error, native_text=""):
    """The LiteRT error plus whatever its C++ side printed, folded into one line."""
    parts = [" ".join(str(error).split())]
    for line in native_text.splitlines():
        line = " ".join(line.split())
        if line and not any(line in part or part in line for part in parts):
            parts.append(line)
    return "; ".join(part for part in parts if part) or type(error).__name__


def _describe(dtype, shape):
    return f"{dtype}{list(shape)}"


def _check_signature(details, expected, kind, name, against, partial=False):
    """``details``: LiteRT's {tensor name: detail} of one side of the signature (``partial``:
    only the tensors of ``expected`` that it holds are checked)."""
    expected_names = [t["name"] for t in expected]
    if partial:
        expected = [t for t in expected if t["name"] in details]
    elif set(details) != set(expected_names):
        raise KblmError(f"{name}: signature {SIGNATURE} has {kind} {sorted(details)}, but {against} lists "
                        f"{sorted(expected_names)}")
    for tensor in expected:
        detail = details[tensor["name"]]
        dtype, shape = np.dtype(detail["dtype"]).name, [int(d) for d in detail["shape"]]
        want = [shape[i] if d is None and i < len(shape) else d for i, d in enumerate(tensor["shape"])]
        if dtype == tensor["dtype"] and shape == want:
            continue
        if tensor["name"] == "log_probs" and dtype == tensor["dtype"] and len(shape) == 2 == len(want):
            raise KblmError(f"{name}: outputs {shape[1]:,} log-probabilities, but {against} says the vocabulary "
                            f"has {want[1]:,} tokens")
        raise KblmError(f"{name}: signature {SIGNATURE} {kind[:-1]} {tensor['name']} is {_describe(dtype, shape)}, "
                        f"but {against} says {_describe(tensor['dtype'], want)}")


class StepRunner:
    """One LiteRT interpreter on the ``step`` signature; state kept between calls.

    ``vocabulary_size`` (if given) is checked against the log_probs output; ``name`` is how
    errors name the model (the user's path), ``against`` what the signature is checked
    against."""

    def __init__(self, model, state_layout, num_threads=1, vocabulary_size=None, name=None,
                 against="the state layout", adapter=None):
        from ai_edge_litert.interpreter import Interpreter

        self.layout = [(name_, int(size)) for name_, size in state_layout]
        self.num_threads = num_threads
        if name is None:
            name = "the .tflite model" if isinstance(model, (bytes, bytearray)) else str(model)
        failure, signatures, details = None, {}, None
        with native_output_captured() as captured:
            try:
                if isinstance(model, (bytes, bytearray)):
                    self.interpreter = Interpreter(model_content=bytes(model), num_threads=num_threads)
                else:
                    self.interpreter = Interpreter(model_path=str(model), num_threads=num_threads)
                # Applies the default (XNNPACK) delegate now, while its log line is captured,
                # rather than lazily at the first step.
                self.interpreter.allocate_tensors()
                signatures = self.interpreter.get_signature_list()
                if SIGNATURE in signatures:
                    self.runner = self.interpreter.get_signature_runner(SIGNATURE)
                    details = self.runner.get_input_details(), self.runner.get_output_details()
            except (ValueError, RuntimeError) as e:  # what LiteRT raises for a model it cannot load
                failure = e
        if failure is not None:
            raise KblmError(f"{name}: not a TFLite model LiteRT can run ({one_line(failure, ''.join(captured))})")
        if details is None:
            raise KblmError(f"{name}: no signature {SIGNATURE!r} (the model has {sorted(signatures)})")
        inputs, outputs = signature_tensors(self.layout, vocabulary_size, adapter)
        # the vocabulary first: with an adapter, its inputs would name the mismatch less plainly
        _check_signature({k: v for k, v in details[1].items() if k == "log_probs"},
                         [t for t in outputs if t["name"] == "log_probs"], "outputs", name, against, partial=True)
        _check_signature(details[0], inputs, "inputs", name, against)
        _check_signature(details[1], outputs, "outputs", name, against)
        self.adapter_shapes = {p["name"]: tuple(p["shape"]) for p in (adapter or {}).get("parameters", [])}
        self.set_adapter(None)
        self.reset()

    def set_adapter(self, arrays):
        """The personal adapter every step adds (docs/engine.md §18): ``{name: float32 array}``
        of the manifest's shapes, or None for zeros (the base model, bit for bit)."""
        self.adapter = {name: np.zeros(shape, np.float32) if arrays is None else
                        np.ascontiguousarray(arrays[name], np.float32)
                        for name, shape in self.adapter_shapes.items()}

    def reset(self):
        """Empty context: every state tensor zero."""
        self.states = {name: np.zeros((1, size), np.float32) for name, size in self.layout}

    def state_inputs(self):
        return {name: value.copy() for name, value in self.states.items()}

    def step(self, token):
        """Feeds one token id; returns log-probabilities (vocabulary,) of the next token."""
        out = self.runner(token=np.array([token], np.int32), **self.states, **self.adapter)
        self.states = {name: out[f"next_{name}"] for name, _ in self.layout}
        return out["log_probs"][0]


class TrainRunner:
    """The bundle's ``train`` signature (docs/engine.md §18.2) in LiteRT: one Adam update of
    the adapter on one window. Holds nothing between calls: the caller keeps the state, the
    adapter and its moments."""

    def __init__(self, model, state_layout, adapter, num_threads=1, name=None):
        from ai_edge_litert.interpreter import Interpreter

        self.layout = [(name_, int(size)) for name_, size in state_layout]
        self.window = int(adapter["window"])
        self.shapes = {p["name"]: tuple(p["shape"]) for p in adapter["parameters"]}
        name = name or str(model)
        failure = None
        with native_output_captured() as captured:
            try:
                self.interpreter = (Interpreter(model_content=bytes(model), num_threads=num_threads)
                                    if isinstance(model, (bytes, bytearray)) else
                                    Interpreter(model_path=str(model), num_threads=num_threads))
                self.interpreter.allocate_tensors()  # the delegate's log line, captured
                signatures = self.interpreter.get_signature_list()
                self.runner = self.interpreter.get_signature_runner("train") if "train" in signatures else None
            except (ValueError, RuntimeError) as e:
                failure = e
        if failure is not None:
            raise KblmError(f"{name}: not a TFLite model LiteRT can run ({one_line(failure, ''.join(captured))})")
        if self.runner is None:
            raise KblmError(f"{name}: no signature 'train' (the model has {sorted(signatures)}), although the "
                            "manifest has an adapter block")
        expected = {"tokens", "targets", "mask", "reset", "step_count", "learning_rate", "l2", *(n for n, _ in self.layout),
                    *self.shapes, *(f"{k}_{n}" for k in ("m", "v") for n in self.shapes)}
        have = set(self.runner.get_input_details())
        if have != expected:
            raise KblmError(f"{name}: signature train has inputs {sorted(have)}, expected {sorted(expected)}")

    def zeros(self):
        return {name: np.zeros(shape, np.float32) for name, shape in self.shapes.items()}

    def train(self, tokens, targets, mask, reset, states, params, m, v, step_count, learning_rate, l2):
        """One window: returns (loss, params, m, v, step_count, states after the window)."""
        out = self.runner(tokens=np.asarray(tokens, np.int32), targets=np.asarray(targets, np.int32),
                          mask=np.asarray(mask, np.float32), reset=np.asarray(reset, np.float32), **states, **params,
                          **{f"m_{k}": a for k, a in m.items()}, **{f"v_{k}": a for k, a in v.items()},
                          step_count=np.float32(step_count), learning_rate=np.float32(learning_rate),
                          l2=np.float32(l2))
        return (float(out["loss"]), {k: out[f"next_{k}"] for k in params}, {k: out[f"next_m_{k}"] for k in m},
                {k: out[f"next_v_{k}"] for k in v}, float(out["next_step_count"]),
                {name: out[f"next_{name}"] for name, _ in self.layout})


def score_messages(runner, messages_ids, top_k=(1, 3)):
    """Sums over messages given as id lists ``[<bos>, ..., <eos>]``, each from an empty state."""
    sums = {"loss_sum": 0.0, "tokens": 0.0, **{f"top{k}": 0.0 for k in top_k}}
    for ids in messages_ids:
        runner.reset()
        for current, target in zip(ids[:-1], ids[1:]):
            log_probs = runner.step(current)
            sums["loss_sum"] -= float(log_probs[target])
            sums["tokens"] += 1
            rank = int(np.sum(log_probs > log_probs[target]))
            for k in top_k:
                sums[f"top{k}"] += rank < k
    return sums
