"""The table of recurrent cells: what the project knows about each cell kind, in one place.

Each row names a kind, its state parts (with the size of each) and its options, without
TensorFlow, so the configuration, the CLI's choices and the manifest's state layout read it
anywhere. The kind's own module (``CellKind.module``, imported only when a model is built,
loaded or exported) holds the TensorFlow side:

    build_layer(units, options, name, unroll) -> a Keras RNN layer;
        layer(x, initial_state=[...], mask=mask) -> [y, *next_states]
    step_weights(layer) -> {role: float32 array}: the weights the one-word step needs
    step(x, states, weights) -> (y, next_states): that step as TensorFlow ops that convert to
        builtin TFLite ops (no loop, no variables)

The state part named "h" is the layer's output, the next layer's input. Adding a kind means a
module with those three functions, a row in ``KINDS`` and its tests (tests/keyboard_lm/test_cells.py
runs every row through the same build, step-parity and export checks).
"""
import dataclasses
import importlib

from data_pipeline.errors import KblmError

MAX_SIZE = 65_536  # widest state part accepted (as for the layers themselves)


@dataclasses.dataclass(frozen=True)
class Option:
    """A setting of a cell kind: its default and what it accepts."""

    default: object
    help: str
    low: int = 1
    high: int = MAX_SIZE
    optional: bool = False  # None allowed (the default then means "no such part")

    def problem(self, value):
        if value is None and self.optional:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high:
            return None
        return f"an integer in [{self.low}, {self.high}]" + (" or null" if self.optional else "")


@dataclasses.dataclass(frozen=True)
class CellKind:
    name: str
    module: str  # the kind's own module: build_layer, step_weights, step
    states: tuple  # ((part, size rule)); a rule maps (units, options) to the part's size
    summary: str
    options: tuple = ()  # ((option name, Option))

    def resolve(self, options, where="model.cell_options"):
        """``options`` checked and completed with the defaults; errors name the option."""
        if not isinstance(options, dict):
            raise KblmError(f"{where}: expected an object, got {options!r}")
        known = dict(self.options)
        unknown = sorted(set(options) - set(known))
        if unknown:
            valid = sorted(known) or "none"
            raise KblmError(f"{where}: unknown option(s) {unknown} for the {self.name} cell; valid: {valid}")
        resolved = {}
        for name, option in self.options:
            value = options.get(name, option.default)
            expected = option.problem(value)
            if expected is not None:
                raise KblmError(f"{where}.{name}: expected {expected}, got {value!r}")
            resolved[name] = value
        return resolved

    def state_parts(self, units, options):
        """[(part name, size)] of one layer of ``units`` units."""
        return [(part, rule(units, options)) for part, rule in self.states]

    def implementation(self):
        return importlib.import_module(self.module)


def _units(units, options):
    return units


def _projected(units, options):
    return options["projection"] or units


KINDS = (
    CellKind("lstm", "keyboard_lm.training.cells.lstm", (("h", _units), ("c", _units)),
             "LSTM (Keras's, cuDNN-eligible): gates [i|f|c|o]"),
    CellKind("gru", "keyboard_lm.training.cells.gru", (("h", _units),),
             "GRU (Keras's, reset_after, cuDNN-eligible): gates [z|r|h]"),
    CellKind("simple_rnn", "keyboard_lm.training.cells.simple_rnn", (("h", _units),),
             "Elman RNN: h = tanh(x W + h R + b)"),
    CellKind("cifg", "keyboard_lm.training.cells.cifg", (("h", _projected), ("c", _units)),
             "CIFG LSTM with a projection (Gboard's cell): input gate = 1 - forget gate, "
             "h projected to a smaller size",
             (("projection", Option(96, "size of the projected output h (null: no projection)",
                                    optional=True)),)),
)
CELL_KINDS = {kind.name: kind for kind in KINDS}
CELLS = tuple(CELL_KINDS)


def keras_cell_weights(layer):
    """The step weights of a Keras built-in recurrent layer (LSTM, GRU, SimpleRNN): its cell's
    kernel, recurrent kernel and bias (``export.step_model`` casts them to float32)."""
    cell = layer.cell
    return {"kernel": cell.kernel.numpy(), "recurrent": cell.recurrent_kernel.numpy(), "bias": cell.bias.numpy()}


def cell_kind(name):
    if name not in CELL_KINDS:
        raise KblmError(f"model cell must be one of {list(CELLS)}; got {name!r}")
    return CELL_KINDS[name]
