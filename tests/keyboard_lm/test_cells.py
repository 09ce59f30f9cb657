"""Every row of the cell table through the same checks: the Keras model builds with the
table's state layout, saves and loads in safe_mode, its one-word step (TensorFlow, then the
real LiteRT interpreter) reproduces the Keras model within 1e-4, and every quantization mode
converts to builtin ops with constant weights. A new cell kind is tested by adding its row."""
import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from data_pipeline.errors import KblmError
from export import tflite
from export.step_model import build_step_model, macs_per_step
from keyboard_lm.phone.runtime import StepRunner
from keyboard_lm.training.cells import CELLS, CELL_KINDS, cell_kind
from keyboard_lm.training.config import ModelConfig, model_config_from_dict, model_config_with, to_dict
from keyboard_lm.training.model import build_model, recurrent_layers, zero_states

VOCABULARY = 60
TOKENS = [1, 7, 23, 5, 59, 12, 4, 4, 31, 2]


def two_layer_config(cell, tie_weights=True):
    return ModelConfig(vocabulary_size=VOCABULARY, embedding_dim=8, rnn_units=(16, 12), cell=cell,
                       dropout=0.0, tie_weights=tie_weights)


def trained_like(config):
    """A model whose weights are random but not small, so every gate matters."""
    keras.utils.set_random_seed(7)
    model = build_model(config)
    rng = np.random.default_rng(3)
    model.set_weights([rng.normal(scale=0.4, size=w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def keras_log_probs(model, config, tokens):
    logits, *states = model([keras.ops.convert_to_tensor(np.array([tokens], np.int32)), *zero_states(config, 1)])
    return tf.nn.log_softmax(logits[0]).numpy(), [np.asarray(s) for s in states]


@pytest.fixture(params=[(cell, True) for cell in CELLS] + [("lstm", False)],  # untied: the output is the same for every cell
                ids=lambda p: f"{p[0]}-{'tied' if p[1] else 'untied'}")
def case(request):
    cell, tie = request.param
    config = two_layer_config(cell, tie)
    return config, trained_like(config)


def test_state_layout_is_the_models_inputs_and_outputs(case):
    config, model = case
    layout = config.state_layout()
    assert [(t.name, t.shape[-1]) for t in model.inputs[1:]] == layout
    assert [t.shape[-1] for t in model.outputs[1:]] == [size for _, size in layout]
    parts = [part for part, _ in cell_kind(config.cell).states]
    assert [name for name, _ in layout] == [f"{p}{i}" for i in range(2) for p in parts]
    assert len(recurrent_layers(model, config)) == 2


def test_step_reproduces_keras_in_tensorflow_and_litert(case):
    config, model = case
    expected, final_states = keras_log_probs(model, config, TOKENS)
    step = build_step_model(model, config)
    states = [np.zeros((1, size), np.float32) for size in config.state_sizes()]
    stepped = []
    for token in TOKENS:
        out = step.step(tf.constant([token], tf.int32), *states)
        stepped.append(out["log_probs"].numpy()[0])
        states = [out[f"next_{name}"].numpy() for name in config.state_names()]
    assert np.abs(np.stack(stepped) - expected).max() <= 1e-5
    for got, want in zip(states, final_states):
        assert np.abs(got - want).max() <= 1e-5

    runner = StepRunner(tflite.convert(step, "float32"), config.state_layout())
    from_litert = np.stack([runner.step(token) for token in TOKENS])
    assert np.abs(from_litert - expected).max() <= 1e-4
    assert macs_per_step(config, step.arrays) > 0


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("mode", ["dynamic_int8", "int8"])  # float16 only halves constants
def test_every_mode_converts_to_builtin_ops_with_constant_weights(cell, mode):
    config = dataclasses.replace(two_layer_config(cell), vocabulary_size=2_000, embedding_dim=32,
                                 rnn_units=(64,))
    model = trained_like(config)
    step = build_step_model(model, config)
    float_runner = StepRunner(tflite.convert(step, "float32"), config.state_layout())
    rng = np.random.default_rng(0)
    representative = tflite.representative_samples(float_runner, [rng.integers(4, 2_000, 40).tolist()], 40)
    model_bytes = tflite.convert(step, mode, representative)
    ops = tflite.check_model(model_bytes, mode, model.count_params())  # refuses Flex, variables, tiny files
    assert not {"VAR_HANDLE", "READ_VARIABLE", "WHILE", "FlexDelegate"} & set(ops)
    assert not any(op.startswith("Flex") or op == "CUSTOM" for op in ops)
    runner = StepRunner(model_bytes, config.state_layout())
    log_probs = runner.step(5)
    assert log_probs.shape == (2_000,) and abs(np.exp(log_probs).sum() - 1) < 0.05


@pytest.mark.parametrize("cell", CELLS)
def test_saved_model_loads_in_safe_mode_with_the_same_outputs(cell, tmp_path):
    from keyboard_lm.training.model import register_custom_layers

    config = two_layer_config(cell)
    model = trained_like(config)
    model.save(tmp_path / "m.keras")
    register_custom_layers()
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True, compile=False)
    a, _ = keras_log_probs(model, config, TOKENS)
    b, _ = keras_log_probs(loaded, config, TOKENS)
    assert np.array_equal(a, b)


def test_cell_options_are_checked_completed_and_reset_with_the_cell():
    for kind in CELL_KINDS.values():
        config = ModelConfig(cell=kind.name)
        assert config.cell_options == {name: option.default for name, option in kind.options}
        assert model_config_from_dict(to_dict(config)) == config  # config.json round trip
    with pytest.raises(KblmError, match=r"model.cell_options: unknown option\(s\) \['depth'\] for the lstm"):
        model_config_from_dict({"cell": "lstm", "cell_options": {"depth": 3}})
    with pytest.raises(KblmError, match=r"model.cell: expected one of \['lstm'"):
        model_config_from_dict({"cell": "transformer"})
    with_options = [kind for kind in CELL_KINDS.values() if kind.options]
    for kind in with_options:
        name, _ = kind.options[0]
        with pytest.raises(KblmError, match=rf"x.cell_options.{name}: expected an integer"):
            model_config_from_dict({"cell": kind.name, "cell_options": {name: "big"}}, "x")
        # a new cell without new options starts from that kind's defaults
        assert model_config_with(ModelConfig(cell=kind.name), {"cell": "lstm"}).cell_options == {}


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_every_cell_computes_in_half_precision_with_float32_logits(cell, policy):
    from keyboard_lm.training.model import recurrent_name

    keras.mixed_precision.set_global_policy(policy)
    try:
        config = two_layer_config(cell)
        model = build_model(config)
        logits, *states = model([keras.ops.convert_to_tensor(np.array([TOKENS], np.int32)),
                                 *zero_states(config, 1, policy.split("_")[1])])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert logits.dtype == "float32" and np.isfinite(np.asarray(logits)).all()
    assert model.get_layer(recurrent_name(config, 0)).compute_dtype != "float32"
    assert all(v.dtype == "float32" for v in model.weights)


def test_cifg_couples_its_gates_and_projects():
    """The CIFG kind against its equations in numpy: three gate blocks [f|g|o], the input gate
    1 - f, h = (o * tanh(c)) P; 3u(d + p + 1) + u p weights per layer."""
    from keyboard_lm.training.cells.cifg import CIFGCell

    units, projection, width = 10, 4, 6
    config = ModelConfig(vocabulary_size=VOCABULARY, embedding_dim=width, rnn_units=(units,), cell="cifg",
                         dropout=0.0, cell_options={"projection": projection})
    assert config.state_layout() == [("h0", projection), ("c0", units)]
    model = trained_like(config)
    layer = recurrent_layers(model, config)[0]
    assert isinstance(layer.cell, CIFGCell)
    assert layer.count_params() == 3 * units * (width + projection + 1) + units * projection
    w = {k: np.asarray(v) for k, v in zip(("kernel", "recurrent", "bias", "projection"), layer.cell.weights)}
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    x = model.get_layer("embedding").embeddings.numpy()[TOKENS]
    h, c = np.zeros(projection), np.zeros(units)
    for row in x:
        f, g, o = np.split(row @ w["kernel"] + h @ w["recurrent"] + w["bias"], 3)
        c = sigmoid(f) * c + (1 - sigmoid(f)) * np.tanh(g)
        h = (sigmoid(o) * np.tanh(c)) @ w["projection"]
    _, (final_h, final_c) = keras_log_probs(model, config, TOKENS)
    assert np.abs(final_h[0] - h).max() <= 1e-5 and np.abs(final_c[0] - c).max() <= 1e-5


def test_a_dry_run_keeps_the_presets_cell_and_checks_its_options(tmp_path, capsys):
    import json

    from keyboard_lm.cli import main

    code = main(["train", "--corpus", "brown", "--preset", "cifg", "--cell-option", "projection=0", "--dry-run",
                 "--out", str(tmp_path / "bad")])
    assert code not in (0, None) and not (tmp_path / "bad").exists()
    assert "model.cell_options.projection: expected an integer" in capsys.readouterr().err
    assert main(["train", "--corpus", "brown", "--preset", "cifg", "--cell-option", "projection=4", "--dry-run",
                 "--out", str(tmp_path / "run")]) in (0, None)
    model = json.loads((tmp_path / "run" / "config.json").read_text())["model"]
    assert model["cell"] == "cifg" and model["cell_options"] == {"projection": 4} and model["rnn_units"] == [16]
