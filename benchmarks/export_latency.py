"""On-device cost of the step model: file size and single-thread per-step latency in LiteRT
(p50/p99 over 2,000 steps) per preset and quantization mode, against a floor of
multiply-accumulates per step / this machine's measured single-core rate.

With ``--run RUN`` (default: runs/bench/brown-bengio-mobile when it exists), also exports
that trained run in every mode and records held-out perplexity and top-3 against float Keras.

Run: ``python benchmarks/export_latency.py``. Writes benchmarks/results/export_latency.{json,md}
and export_quality.{json,md}.
"""
import argparse
import dataclasses
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks.common import write_results  # noqa: E402

STEPS = 2000
MODES = ("float32", "float16", "dynamic_int8", "int8", "int16x8")


def fc_rate(mode):
    """Single-thread multiply-accumulates per second of one 1x1024 @ 1024x4096 layer in LiteRT."""
    import tensorflow as tf

    from ai_edge_litert.interpreter import Interpreter

    weights = tf.constant(np.random.default_rng(0).normal(size=(1024, 4096)).astype(np.float32))
    module = tf.Module()
    module.f = tf.function(lambda x: {"y": tf.matmul(x, weights)}, input_signature=[tf.TensorSpec([1, 1024])])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.f.get_concrete_function()], module)
    if mode == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    interpreter = Interpreter(model_content=converter.convert(), num_threads=1)
    runner = interpreter.get_signature_runner()
    x = np.ones((1, 1024), np.float32)
    times = []
    for i in range(300):
        start = time.perf_counter()
        runner(x=x)
        if i >= 50:
            times.append(time.perf_counter() - start)
    return 1024 * 4096 / float(np.median(times))


def step_latency(model_bytes, layout, vocabulary_size):
    from keyboard_lm.phone.runtime import StepRunner

    runner = StepRunner(model_bytes, layout, num_threads=1)
    tokens = np.random.default_rng(0).integers(4, vocabulary_size, STEPS + 100)
    times = []
    for i, token in enumerate(tokens):
        start = time.perf_counter()
        runner.step(int(token))
        if i >= 100:
            times.append(time.perf_counter() - start)
    return 1000 * float(np.percentile(times, 50)), 1000 * float(np.percentile(times, 99))


def latency_rows():
    from data_pipeline.errors import KblmError
    from export import tflite
    from keyboard_lm.phone.runtime import StepRunner
    from export.step_model import build_step_model, macs_per_step
    from keyboard_lm.training.config import preset
    from keyboard_lm.training.model import build_model

    rates = {"float": fc_rate("float"), "int8": fc_rate("int8")}
    print(f"single-core multiply-accumulates/s: float {rates['float']:.3g}, int8 {rates['int8']:.3g}", flush=True)
    rows = []
    for name in ("tiny", "mobile", "server"):
        config = dataclasses.replace(preset(name)[0], vocabulary_size=10_000)
        model = build_model(config)
        step = build_step_model(model, config)
        layout = config.state_layout()
        float_bytes = tflite.convert(step, "float32")
        rng = np.random.default_rng(0)
        representative = [{"token": np.array([rng.integers(4, 10_000)], np.int32),
                           **{n: rng.normal(scale=0.3, size=(1, s)).astype(np.float32) for n, s in layout}}
                          for _ in range(100)]
        # Realistic states for calibration: the float step loop on random tokens.
        representative = tflite.representative_samples(
            StepRunner(float_bytes, layout), [rng.integers(4, 10_000, 100).tolist()], 100) or representative
        macs = macs_per_step(config, step.arrays)
        for mode in MODES:
            row = {"preset": name, "mode": mode, "parameters": model.count_params(), "macs": macs}
            try:
                model_bytes = float_bytes if mode == "float32" else tflite.convert(step, mode, representative)
            except KblmError as e:
                rows.append({**row, "size_mb": "fails", "note": str(e)[:90]})
                print(rows[-1], flush=True)
                continue
            p50, p99 = step_latency(model_bytes, layout, 10_000)
            floor = 1000 * macs / rates["int8" if "int8" in mode or mode == "int16x8" else "float"]
            rows.append({**row, "size_mb": len(model_bytes) / 1e6, "p50_ms": p50, "p99_ms": p99,
                         "floor_ms": floor, "p50_over_floor": f"{p50 / floor:.1f}x"})
            print(rows[-1], flush=True)
    return rows, rates


def quality_rows(run):
    from data_pipeline.errors import KblmError
    from export.exporter import export_run

    rows = []
    with tempfile.TemporaryDirectory() as out:
        for mode in MODES:
            try:
                manifest = export_run(run, mode, os.path.join(out, mode), force=True, sample_messages=500)
            except KblmError as e:
                rows.append({"mode": mode, "size_mb": "fails", "note": str(e)[:90]})
                continue
            m = manifest["metrics"]
            rows.append({"mode": mode, "size_mb": manifest["files"]["model.tflite"]["bytes"] / 1e6,
                         "keras_perplexity": m["keras_float32"]["perplexity"],
                         "tflite_perplexity": m["tflite"]["perplexity"],
                         "keras_top3": 100 * m["keras_float32"]["top3"], "tflite_top3": 100 * m["tflite"]["top3"],
                         "top3_change": f"{100 * m['top3_relative_change']:+.2f}%", "tokens": m["tflite"]["tokens"]})
            print(rows[-1], flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/bench/brown-bengio-mobile", help="trained run for quality per mode")
    args = parser.parse_args()
    rows, rates = latency_rows()
    print(write_results("export_latency", rows, [
        ("preset", "preset"), ("mode", "mode"), ("size_mb", "size (MB)"), ("p50_ms", "p50 ms"),
        ("p99_ms", "p99 ms"), ("floor_ms", "floor ms"), ("p50_over_floor", "p50 / floor")],
        {"single_core_macs_per_second": rates, "steps": STEPS}))
    if os.path.exists(os.path.join(args.run, "best.keras")):
        print(write_results("export_quality", quality_rows(args.run), [
            ("mode", "mode"), ("size_mb", "size (MB)"), ("keras_perplexity", "Keras float ppl"),
            ("tflite_perplexity", "TFLite ppl"), ("keras_top3", "Keras top-3 %"), ("tflite_top3", "TFLite top-3 %"),
            ("top3_change", "top-3 change"), ("tokens", "tokens")], {"run": args.run}))


if __name__ == "__main__":
    main()
