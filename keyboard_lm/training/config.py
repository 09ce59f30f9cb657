"""Configuration in one place: the model, the training run, the presets.

Every run saves these as JSON (``config.json``) next to its model; the export step and
the Android app read the model part. Unknown keys are refused, never ignored.
"""
import dataclasses
import json
import math

from data_pipeline.errors import KblmError
from data_pipeline.pipeline_config import MODES, PipelineConfig
from data_pipeline.vocab import SPECIAL_TOKENS
from keyboard_lm.training.cells import CELLS, cell_kind

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("plateau", "cosine", "constant")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The network: Embedding(mask_zero) -> stacked RNN -> projection -> tied output."""

    vocabulary_size: int = 10_000  # set from the vocabulary at build time
    embedding_dim: int = 96  # also the projection size when tied
    rnn_units: tuple = (256,)  # one entry per stacked recurrent layer
    cell: str = "lstm"  # a kind of keyboard_lm.training.cells (lstm | gru | simple_rnn | ...)
    dropout: float = 0.1  # after the embedding, between layers and before the output
    tie_weights: bool = True  # output layer = embedding matrix transposed (+ bias)
    cell_options: dict = dataclasses.field(default_factory=dict)  # the cell kind's own settings

    def __post_init__(self):
        object.__setattr__(self, "rnn_units", tuple(int(u) for u in self.rnn_units))
        # Completed with the kind's defaults, so a run's config.json records every value.
        object.__setattr__(self, "cell_options", cell_kind(self.cell).resolve(self.cell_options))
        if not self.rnn_units or min(self.rnn_units) < 1:
            raise KblmError(f"model rnn_units must be a non-empty list of positive sizes; got {self.rnn_units}")
        if not 0 <= self.dropout < 1:
            raise KblmError(f"model dropout must be in [0, 1); got {self.dropout}")

    def state_layout(self):
        """[(name, size)] of the recurrent state tensors, layer by layer: h0, c0, h1, c1, ...
        for an LSTM; the cell table says which parts a kind has and how wide each is."""
        kind = cell_kind(self.cell)
        return [(f"{part}{i}", size) for i, units in enumerate(self.rnn_units)
                for part, size in kind.state_parts(units, self.cell_options)]

    def state_sizes(self):
        return [size for _, size in self.state_layout()]

    def state_names(self):
        return [name for name, _ in self.state_layout()]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How the model is trained; the batch layout lives in ``pipeline``."""

    epochs: int = 10
    max_minutes: float | None = None  # stop (after validating) once this much time has passed
    optimizer: str = "adam"  # adam | adamw | sgd (sgd: the paper-replication setting)
    learning_rate: float = 2e-3
    weight_decay: float = 0.0  # adamw only
    clip_norm: float = 1.0  # global-norm gradient clipping (against exploding gradients)
    schedule: str = "plateau"  # plateau: halve the rate when valid perplexity stalls
    warmup_steps: int = 0  # cosine only: linear warm-up
    early_stopping_patience: int = 3  # epochs without valid-perplexity improvement
    precision: str = "float32"  # float32 | mixed_float16 | mixed_bfloat16
    jit_compile: bool = False  # XLA-compile the forward/backward pass
    strategy: str = "auto"  # auto: MirroredStrategy over all GPUs if any, else default
    seed: int = 1234
    steps_per_epoch: int | None = None  # cap batches per epoch (dry runs, benchmarks)
    validation_steps: int | None = None  # cap validation batches
    pipeline: PipelineConfig = PipelineConfig()

    def __post_init__(self):
        for name, value, allowed in (("optimizer", self.optimizer, OPTIMIZERS),
                                     ("schedule", self.schedule, SCHEDULES),
                                     ("precision", self.precision, PRECISIONS),
                                     ("strategy", self.strategy, STRATEGIES)):
            if value not in allowed:
                raise KblmError(f"train {name} must be one of {list(allowed)}; got {value!r}")
        if self.epochs < 1 or self.learning_rate <= 0 or self.clip_norm <= 0:
            raise KblmError("train epochs, learning_rate and clip_norm must be positive; got "
                            f"{self.epochs}, {self.learning_rate}, {self.clip_norm}")


PRESETS = {
    # Toy sizes for tests: seconds per epoch on a laptop.
    "tiny": (ModelConfig(embedding_dim=8, rnn_units=(16,), dropout=0.0),
             TrainConfig(epochs=2, pipeline=PipelineConfig(batch_size=8, sequence_length=12))),
    # The on-device default: <= 1.5M parameters at a 10k vocabulary (Gboard's LSTM budget).
    "mobile": (ModelConfig(embedding_dim=96, rnn_units=(256,), dropout=0.1),
               TrainConfig(pipeline=PipelineConfig(batch_size=32, sequence_length=35))),
    # The mobile budget with Gboard's cell: CIFG 560 units projected to 96 (1.357M parameters);
    # ahead of `mobile` at the same CPU budget on Brown and nlp-corpus (benchmarks/cells.py).
    "cifg": (ModelConfig(embedding_dim=96, rnn_units=(560,), cell="cifg", cell_options={"projection": 96},
                         dropout=0.1),
             TrainConfig(pipeline=PipelineConfig(batch_size=32, sequence_length=35))),
    # For a GPU: two wide layers, tied through a 400-wide projection.
    "server": (ModelConfig(embedding_dim=400, rnn_units=(1024, 1024), dropout=0.4),
               TrainConfig(learning_rate=1e-3, pipeline=PipelineConfig(batch_size=64, sequence_length=50))),
}


def preset(name):
    if name not in PRESETS:
        raise KblmError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]


# -- checking settings from JSON, flags and run directories ----------------------------------
# Every field of the three configs, with what it accepts. ``_from_dict`` checks each one
# before a config is built (and so before any data is loaded): --config files, flags and a
# run's config.json all go through it, and an error names the field and the value.

MAX_SIZE = 65_536  # widest embedding / recurrent layer accepted (the server preset uses 1,024)
MAX_SEED = 2**32 - 1  # numpy's seed range (keras.utils.set_random_seed)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _integer(low, high=None, optional=False):
    def check(value):
        if value is None and optional:
            return None
        if _is_int(value) and value >= low and (high is None or value <= high):
            return None
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        return f"an integer {bound}" + (" or null" if optional else "")
    return check


def _number(low, inclusive=True, high=None, optional=False):
    def check(value):
        if value is None and optional:
            return None
        if (_is_number(value) and (value >= low if inclusive else value > low)
                and (high is None or value < high)):
            return None
        bound = (f"in [{low}, {high})" if high is not None
                 else f"{'>=' if inclusive else '>'} {low}")
        return f"a number {bound}" + (" or null" if optional else "")
    return check


def _choice(allowed):
    def check(value):
        return None if isinstance(value, str) and value in allowed else f"one of {list(allowed)}"
    return check


def _boolean(value):
    return None if isinstance(value, bool) else "true or false"


def _sizes(value):
    if (isinstance(value, (list, tuple)) and value
            and all(_is_int(u) and 1 <= u <= MAX_SIZE for u in value)):
        return None
    return f"a non-empty list of integers in [1, {MAX_SIZE}]"


def _object(value):
    return None if isinstance(value, dict) else "an object"


def _pipeline(value):
    return None if isinstance(value, (dict, PipelineConfig)) else "an object"


CHECKS = {
    ModelConfig: {
        "vocabulary_size": _integer(len(SPECIAL_TOKENS) + 1),  # the specials and at least one word
        "embedding_dim": _integer(1, MAX_SIZE),
        "rnn_units": _sizes,
        "cell": _choice(CELLS),
        "dropout": _number(0, high=1),
        "tie_weights": _boolean,
        "cell_options": _object,  # each option is checked by the cell kind (ModelConfig.__post_init__)
    },
    TrainConfig: {
        "epochs": _integer(1),
        "max_minutes": _number(0, inclusive=False, optional=True),
        "optimizer": _choice(OPTIMIZERS),
        "learning_rate": _number(0, inclusive=False),
        "weight_decay": _number(0),
        "clip_norm": _number(0, inclusive=False),
        "schedule": _choice(SCHEDULES),
        "warmup_steps": _integer(0),
        "early_stopping_patience": _integer(0),
        "precision": _choice(PRECISIONS),
        "jit_compile": _boolean,
        "strategy": _choice(STRATEGIES),
        "seed": _integer(0, MAX_SEED),
        "steps_per_epoch": _integer(1, optional=True),
        "validation_steps": _integer(1, optional=True),
        "pipeline": _pipeline,
    },
    PipelineConfig: {
        "mode": _choice(MODES),
        "batch_size": _integer(1),
        "sequence_length": _integer(1),
        "bucket_by_length": _boolean,
        "shuffle_buffer": _integer(1),
        "cache": _boolean,
        "seed": _integer(0, MAX_SEED),
    },
}


def check_value(cls, field, value, where):
    """Raises a one-line KblmError ``WHERE: expected ..., got VALUE`` if ``field`` refuses ``value``."""
    expected = CHECKS[cls][field](value)
    if expected is not None:
        raise KblmError(f"{where}: expected {expected}, got {value!r}")


def check_fields(cls, data, where):
    """Checks the fields present in ``data`` (a partial or whole config as a dict): an object,
    known keys only, each value of the right type and range. Errors read ``WHERE.FIELD: ...``."""
    if not isinstance(data, dict):
        raise KblmError(f"{where}: expected an object, got {data!r}")
    fields = CHECKS[cls]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise KblmError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(fields)}")
    for field, value in data.items():
        if cls is TrainConfig and field == "pipeline" and isinstance(value, dict):
            check_fields(PipelineConfig, value, f"{where}.pipeline")
        else:
            check_value(cls, field, value, f"{where}.{field}")


def _from_dict(cls, data, where):
    check_fields(cls, data, where)
    values = dict(data)
    if cls is TrainConfig and isinstance(values.get("pipeline"), dict):
        values["pipeline"] = _from_dict(PipelineConfig, values["pipeline"], f"{where}.pipeline")
    if cls is ModelConfig and "cell_options" in values:  # the kind checks its own options
        cell_kind(values.get("cell", "lstm")).resolve(values["cell_options"], f"{where}.cell_options")
    try:
        return cls(**values)
    except TypeError as e:
        raise KblmError(f"{where}: {e}") from None


def model_config_from_dict(data, where="model"):
    return _from_dict(ModelConfig, data, where)


def model_config_with(base, overrides, where="model"):
    """``base`` (a ModelConfig) with ``overrides`` (a dict of fields); a change of cell without
    new ``cell_options`` starts from the new kind's defaults."""
    values = to_dict(base)
    if overrides.get("cell", values["cell"]) != values["cell"]:
        values.pop("cell_options")
    return model_config_from_dict({**values, **overrides}, where)


def train_config_from_dict(data, where="train"):
    return _from_dict(TrainConfig, data, where)


def to_dict(config):
    return json.loads(json.dumps(dataclasses.asdict(config)))
