"""TFLite conversion and quantization of the step model; op and size checks.

Input: a ``StepModel`` (export.step_model) and a quantization mode. Output: the .tflite
bytes, checked: builtin ops only, no resource variables (weights are constants), and a
size consistent with the parameter count for the mode.

Modes (measured on the mobile preset, 10k vocabulary, 1.36M parameters):
- ``float32``: 5.4 MB. The tied embedding is stored once (gather and output share it).
- ``float16``: weights in float16, computed in float32: 2.7 MB.
- ``dynamic_int8``: int8 weights, float activations, per-tensor scales so the gather and
  the output layer share one int8 embedding: 1.35 MB (per-channel scales would store it
  twice: 2.46 MB).
- ``int8``: full integer (int8 activations calibrated on states from the real step loop
  over training text). The converter quantizes the gather table and the output weights
  differently, so the tied embedding is stored twice: 2.46 MB.
- ``int16x8``: int16 activations, int8 weights. The converter fails on trained models
  ("Mismatch between number of weight maxs and channels"; upstream reports 16x8 failing
  for LSTMs); randomly initialised ones convert but run ~10x slower than int8.
"""
import numpy as np
import tensorflow as tf

from data_pipeline.errors import KblmError
from data_pipeline.textio import temporary_directory

MODES = ("float32", "float16", "dynamic_int8", "int8", "int16x8")
FORBIDDEN_OPS = ("VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "WHILE", "CUSTOM", "FLEX")
BYTES_PER_WEIGHT = {"float32": 4, "float16": 2, "dynamic_int8": 1, "int8": 1, "int16x8": 1}


def check_mode(mode):
    if mode not in MODES:
        raise KblmError(f"quantization must be one of {list(MODES)}; got {mode!r}")


def convert(step_model, mode, representative=None):
    """StepModel (or AdaptableModel: ``step`` and ``train``) -> .tflite bytes in ``mode``;
    ``representative`` feeds int8/int16x8 calibration. Every signature shares one copy of the
    constants (the converter stores a buffer once)."""
    check_mode(mode)
    signatures = step_model.signatures()
    with temporary_directory("kblm-convert-") as saved:  # TensorFlow's SavedModel copy
        tf.saved_model.save(step_model, saved, signatures=signatures)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=list(signatures))
        converter.experimental_enable_resource_variables = False  # fail loudly, never keep variables
        if mode != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if mode == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if mode == "dynamic_int8":
            converter._experimental_disable_per_channel = True  # one shared int8 embedding
        if mode in ("int8", "int16x8"):
            if not representative:
                raise KblmError(f"quantization {mode} needs representative data; none was drawn "
                                "(the training text gave no tokens)")
            converter.representative_dataset = lambda: iter(representative)
            converter.target_spec.supported_ops = (
                [tf.lite.OpsSet.TFLITE_BUILTINS_INT8] if mode == "int8" else
                [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
                 tf.lite.OpsSet.TFLITE_BUILTINS])
        try:
            return converter.convert()
        except Exception as e:  # the converter's messages are long; keep the first line
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise KblmError(f"TFLite conversion in mode {mode} failed: {first}") from None


def op_names(tflite_bytes):
    """Every operator of every subgraph, by builtin name."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(tflite_bytes))
    return [flatbuffer_utils.opcode_to_name(model, op.opcodeIndex)
            for subgraph in model.subgraphs for op in subgraph.operators]


def check_model(tflite_bytes, mode, parameters, extra=0):
    """Refuses a model with variables, loops or non-builtin ops, or whose size does not
    match the parameter count (a tiny file that runs on uninitialised weights). ``extra``:
    bytes a second signature may add on top (its graph; the train signature's own copy of the
    output bias)."""
    ops = op_names(tflite_bytes)
    bad = sorted({op for op in ops if any(op.startswith(f) for f in FORBIDDEN_OPS)})
    if bad:
        raise KblmError(f"the {mode} model has ops the phone cannot run or that hold weights as "
                        f"variables: {bad}")
    expected = parameters * BYTES_PER_WEIGHT[mode]
    # At least 0.8 bytes per weight per byte of the mode; never more than float32's size
    # (+10%, +64 KB of graph): duplicated int8 tables and int32 biases fit in between.
    if not 0.8 * expected <= len(tflite_bytes) <= 1.1 * 4 * parameters + 65_536 + extra:
        raise KblmError(f"the {mode} model is {len(tflite_bytes):,} bytes for {parameters:,} "
                        f"parameters (expected about {expected:,}); its weights are missing or duplicated")
    return ops


def representative_samples(float_runner, token_lists, limit=500):
    """(token, state) inputs met by the real float step loop over training text."""
    samples = []
    for tokens in token_lists:
        float_runner.reset()
        for token in tokens:
            samples.append({"token": np.array([token], np.int32), **float_runner.state_inputs()})
            float_runner.step(token)
            if len(samples) >= limit:
                return samples
    return samples
