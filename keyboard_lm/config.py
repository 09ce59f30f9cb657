"""Configuration in one place: the model, the training run, the presets.

Every run saves these as JSON (``config.json``) next to its model; the export step and
the Android app read the model part. Unknown keys are refused, never ignored.
"""
import dataclasses
import json

from data_pipeline.dataset import PipelineConfig
from data_pipeline.errors import KblmError

CELLS = ("lstm", "gru", "simple_rnn")
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
    cell: str = "lstm"  # lstm | gru | simple_rnn
    dropout: float = 0.1  # after the embedding, between layers and before the output
    tie_weights: bool = True  # output layer = embedding matrix transposed (+ bias)

    def __post_init__(self):
        object.__setattr__(self, "rnn_units", tuple(int(u) for u in self.rnn_units))
        if self.cell not in CELLS:
            raise KblmError(f"model cell must be one of {list(CELLS)}; got {self.cell!r}")
        if not self.rnn_units or min(self.rnn_units) < 1:
            raise KblmError(f"model rnn_units must be a non-empty list of positive sizes; got {self.rnn_units}")
        if not 0 <= self.dropout < 1:
            raise KblmError(f"model dropout must be in [0, 1); got {self.dropout}")

    def state_sizes(self):
        """Sizes of the recurrent state tensors, layer by layer (h, c for an LSTM)."""
        per_layer = 2 if self.cell == "lstm" else 1
        return [units for units in self.rnn_units for _ in range(per_layer)]


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
    # For a GPU: two wide layers, tied through a 400-wide projection.
    "server": (ModelConfig(embedding_dim=400, rnn_units=(1024, 1024), dropout=0.4),
               TrainConfig(learning_rate=1e-3, pipeline=PipelineConfig(batch_size=64, sequence_length=50))),
}


def preset(name):
    if name not in PRESETS:
        raise KblmError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]


def _from_dict(cls, data, where):
    if not isinstance(data, dict):
        raise KblmError(f"{where}: expected an object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise KblmError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(fields)}")
    values = dict(data)
    if cls is TrainConfig and "pipeline" in values:
        values["pipeline"] = _from_dict(PipelineConfig, values["pipeline"], f"{where}.pipeline")
    try:
        return cls(**values)
    except TypeError as e:
        raise KblmError(f"{where}: {e}") from None


def model_config_from_dict(data, where="model"):
    return _from_dict(ModelConfig, data, where)


def train_config_from_dict(data, where="train"):
    return _from_dict(TrainConfig, data, where)


def to_dict(config):
    return json.loads(json.dumps(dataclasses.asdict(config)))
