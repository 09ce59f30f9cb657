"""How batches are laid out (PipelineConfig, MODES): plain Python, no TensorFlow, so the
training config and the CLI's choices can be read without it. ``data_pipeline.dataset``
builds the tf.data pipelines from it and re-exports both names."""
import dataclasses

from data_pipeline.errors import KblmError

MODES = ("message", "stream")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """How batches are laid out; saved with every training run."""

    mode: str = "message"  # "message" (padded, masked) or "stream" (truncated BPTT)
    batch_size: int = 32
    sequence_length: int = 35  # inputs per row: max message window, or the bptt length
    bucket_by_length: bool = True  # message mode: group similar lengths to cut padding
    shuffle_buffer: int = 20_000  # message mode, training only (windows)
    cache: bool = True  # keep encoded windows in memory after the first pass
    seed: int = 1234

    def __post_init__(self):
        if self.mode not in MODES:
            raise KblmError(f"pipeline mode must be one of {list(MODES)}; got {self.mode!r}")
        # (keyboard_lm.training.config checks every field of a config read from JSON or flags, naming it;
        # this guards configs built in code.)
        for name in ("batch_size", "sequence_length", "shuffle_buffer"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise KblmError(f"pipeline {name}: expected an integer >= 1, got {value!r}")

    def bucket_boundaries(self):
        """Window lengths (sequence_length + 1 at most) padded up to these, minus one."""
        top = self.sequence_length + 2
        return sorted({min(top, b) for b in (8, 12, 16, 24, 32, 48, 64, 96, 128)} | {top})
