"""Export: the step model in LiteRT against Keras, every quantization mode, the bundle, bad input."""
import json
import shutil
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from data_pipeline.errors import KblmError
from data_pipeline.vocab import BOS_ID
from export import tflite
from export.bundle import zip_path
from export.exporter import sentence_ids, export_run
from export.step_model import build_step_model
from keyboard_lm.cli import main
from keyboard_lm.phone.bundle import FORMAT_VERSION, load_bundle
from keyboard_lm.phone.runtime import StepRunner
from keyboard_lm.training.model import zero_states
from keyboard_lm.training.run import load_run
from keyboard_lm.training.train import train


@pytest.fixture(scope="module")
def brown_run(tmp_path_factory):
    """A small LSTM trained briefly on Brown (real weights, real vocabulary)."""
    run = tmp_path_factory.mktemp("runs") / "brown"
    train(run, "brown", "tiny", {"embedding_dim": 16, "rnn_units": [24, 20]},
          {"epochs": 1, "steps_per_epoch": 30, "validation_steps": 5}, progress=False)
    return run


@pytest.fixture(scope="module")
def loaded(brown_run):
    run = load_run(brown_run)
    return run.model_config, run.model, run.vocab


@pytest.fixture(scope="module")
def float_bytes(loaded):
    model_config, model, _ = loaded
    return tflite.convert(build_step_model(model, model_config), "float32")


@pytest.mark.corpus
def test_float32_step_loop_reproduces_keras(loaded, float_bytes, brown, nlp_corpus):
    model_config, model, vocab = loaded
    runner = StepRunner(float_bytes, model_config.state_layout())
    for corpus in (brown, nlp_corpus):
        for ids in sentence_ids(corpus.splits["test"][:15], vocab, 15):
            runner.reset()
            stepped = np.stack([runner.step(token) for token in ids[:-1]])
            inputs = keras.ops.convert_to_tensor(np.array([ids[:-1]], np.int32))
            logits, *_ = model([inputs, *zero_states(model_config, 1)])
            expected = tf.nn.log_softmax(logits[0]).numpy()
            assert np.abs(stepped - expected).max() <= 1e-4


@pytest.mark.parametrize("mode", ["float32", "float16", "dynamic_int8", "int8"])
def test_every_mode_has_constant_weights_and_the_right_size(loaded, float_bytes, brown, mode):
    model_config, model, vocab = loaded
    representative = tflite.representative_samples(
        StepRunner(float_bytes, model_config.state_layout()), sentence_ids(brown.splits["train"], vocab, 20))
    model_bytes = tflite.convert(build_step_model(model, model_config), mode, representative)
    ops = tflite.check_model(model_bytes, mode, model.count_params())
    assert "GATHER" in ops and "FULLY_CONNECTED" in ops
    assert not {"VAR_HANDLE", "READ_VARIABLE", "WHILE"} & set(ops)
    runner = StepRunner(model_bytes, model_config.state_layout())
    log_probs = runner.step(BOS_ID)
    assert log_probs.shape == (len(vocab),) and abs(np.exp(log_probs).sum() - 1) < 0.05


def test_the_checks_catch_variables_and_missing_weights():
    class WithVariable(tf.Module):
        def __init__(self):
            self.v = tf.Variable(tf.ones([4]))

        @tf.function(input_signature=[tf.TensorSpec([4], tf.float32)])
        def step(self, x):
            self.v.assign_add(x)
            return {"y": self.v * 2.0}

    module = WithVariable()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.step.get_concrete_function()], module)
    converter.experimental_enable_resource_variables = True
    with_variables = converter.convert()
    with pytest.raises(KblmError, match="VAR_HANDLE|READ_VARIABLE|ASSIGN_VARIABLE"):
        tflite.check_model(with_variables, "float32", 4)
    with pytest.raises(KblmError, match="weights are missing or duplicated"):
        tflite.check_model(tflite_model_without_weights(), "float32", 1_000_000)


def tflite_model_without_weights():
    module = tf.Module()
    module.f = tf.function(lambda x: {"y": x * 2.0}, input_signature=[tf.TensorSpec([4], tf.float32)])
    return tf.lite.TFLiteConverter.from_concrete_functions([module.f.get_concrete_function()], module).convert()


def test_int16x8_and_empty_calibration_fail_clearly(loaded):
    model_config, model, _ = loaded
    step = build_step_model(model, model_config)
    with pytest.raises(KblmError, match="needs representative data"):
        tflite.convert(step, "int8", [])
    with pytest.raises(KblmError, match="quantization must be one of"):
        tflite.convert(step, "int4")


def test_export_bundle_inspect_and_tf_free_loading(brown_run, tmp_path, capsys):
    out = tmp_path / "bundle"
    assert main(["export", str(brown_run), "--quantize", "dynamic_int8", "--out", str(out), "--zip",
                 "--sample-messages", "40", "--tolerance", "0.05"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION and manifest["quantization"] == "dynamic_int8"
    assert [s["name"] for s in manifest["signature"]["states"]] == ["h0", "c0", "h1", "c1"]
    assert manifest["metrics"]["keras_float32"]["tokens"] == manifest["metrics"]["tflite"]["tokens"] > 100
    assert main(["inspect", str(zip_path(out))]) == 0
    assert "checksums OK" in capsys.readouterr().out
    code = ("import sys; sys.modules['tensorflow'] = None\n"
            "from keyboard_lm.phone.bundle import load_bundle\n"
            f"b = load_bundle({str(out)!r}); r = b.runner()\n"
            "lp = r.step(2); assert lp.shape == (len(b.vocab),)\n"
            "assert not any(m.startswith('tensorflow') for m in sys.modules if sys.modules[m])\n")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture(scope="module")
def bundle(brown_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundles") / "b"
    export_run(brown_run, "float32", out, make_zip=True, sample_messages=20)
    return out


def copy_of(bundle, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(bundle, target)
    return target


def test_tampered_bundle(bundle, tmp_path):
    target = copy_of(bundle, tmp_path)
    with open(target / "model.tflite", "r+b") as f:
        f.seek(2000)
        f.write(b"\x00\x01")
    with pytest.raises(KblmError, match="model.tflite: sha256 does not match"):
        load_bundle(target)


def test_bundle_of_another_format_version(bundle, tmp_path):
    target = copy_of(bundle, tmp_path)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["format_version"] = 99
    (target / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(KblmError, match="format_version 99"):
        load_bundle(target)


def test_zip_with_escaping_paths(bundle, tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.write(bundle / "manifest.json", "manifest.json")
        archive.writestr("../../outside.txt", "gotcha")
    with pytest.raises(KblmError, match="would escape the bundle directory"):
        load_bundle(evil)
    assert not (tmp_path.parent / "outside.txt").exists()


def test_zip_with_unexpected_entries_is_refused_and_cleaned_up(bundle, tmp_path):
    import tempfile
    from pathlib import Path

    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(bundle / "manifest.json", "manifest.json")
        archive.writestr("pad.bin", b"\0" * 5_000_000)
    before = set(Path(tempfile.gettempdir()).glob("kblm-bundle-*"))
    with pytest.raises(KblmError, match="unexpected entry 'pad.bin'"):
        load_bundle(bomb)
    assert set(Path(tempfile.gettempdir()).glob("kblm-bundle-*")) == before


def test_bundle_directories_get_the_usual_mode(bundle):
    assert bundle.stat().st_mode & 0o755 == 0o755


def test_zip_bundle_loads(bundle):
    loaded = load_bundle(zip_path(bundle))
    assert loaded.manifest["quantization"] == "float32"


def test_tolerance_refuses_then_force_exports(brown_run, tmp_path):
    with pytest.raises(KblmError, match="more than the tolerance.*--force"):
        export_run(brown_run, "float16", tmp_path / "b", tolerance=-0.5, sample_messages=20)
    assert not (tmp_path / "b").exists()
    with pytest.warns(UserWarning, match="exported anyway"):
        manifest = export_run(brown_run, "float16", tmp_path / "b", tolerance=-0.5, force=True,
                              sample_messages=20)
    assert manifest["metrics"]["forced"]


def test_killed_export_leaves_nothing_half_written(brown_run, tmp_path, monkeypatch):
    import export.bundle

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(export.bundle.shutil, "copyfile", killed)
    with pytest.raises(KeyboardInterrupt):
        export_run(brown_run, "float32", tmp_path / "b", sample_messages=10)
    assert list(tmp_path.iterdir()) == []


def test_missing_run_and_unknown_mode(tmp_path, brown_run, capsys):
    assert main(["export", str(tmp_path / "nope"), "--out", str(tmp_path / "b")]) == 1
    assert "no such run directory" in capsys.readouterr().err
    assert main(["export", str(brown_run), "--quantize", "int4", "--out", str(tmp_path / "b")]) == 1
    assert "quantization must be one of" in capsys.readouterr().err
    (brown_run / "best.keras").rename(brown_run / "best.keras.bak")
    try:
        assert main(["export", str(brown_run), "--out", str(tmp_path / "b")]) == 1
        assert "best.keras: missing" in capsys.readouterr().err
    finally:
        (brown_run / "best.keras.bak").rename(brown_run / "best.keras")


def test_a_truncated_model_is_named_in_one_line_and_kept(tmp_path, brown_run, capsys):
    run = tmp_path / "run"
    shutil.copytree(brown_run, run)
    model = run / "best.keras"
    with open(model, "r+b") as f:
        f.truncate(model.stat().st_size // 2)
    size = model.stat().st_size
    for command in (["evaluate", str(run), "--max-batches", "1"], ["export", str(run), "--out", str(tmp_path / "b")]):
        assert main(command) == 1
        err = capsys.readouterr().err
        assert "best.keras: not a .keras archive" in err and "truncated or corrupt" in err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert model.stat().st_size == size and not (tmp_path / "b").exists()
