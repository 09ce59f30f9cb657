"""Running the step model in LiteRT, and scoring it on text. numpy + ai_edge_litert only.

Input: .tflite bytes (or a path) and the state layout from the manifest. Output: a
``StepRunner`` that holds the recurrent state and returns log-probabilities one token at a
time, the loop the phone runs. ``score_messages`` measures perplexity and top-k with it.
"""
import numpy as np


class StepRunner:
    """One LiteRT interpreter on the ``step`` signature; state kept between calls."""

    def __init__(self, model, state_layout, num_threads=1):
        from ai_edge_litert.interpreter import Interpreter

        if isinstance(model, (bytes, bytearray)):
            self.interpreter = Interpreter(model_content=bytes(model), num_threads=num_threads)
        else:
            self.interpreter = Interpreter(model_path=str(model), num_threads=num_threads)
        self.runner = self.interpreter.get_signature_runner("step")
        self.layout = [(name, int(size)) for name, size in state_layout]
        self.reset()

    def reset(self):
        """Empty context: every state tensor zero."""
        self.states = {name: np.zeros((1, size), np.float32) for name, size in self.layout}

    def state_inputs(self):
        return {name: value.copy() for name, value in self.states.items()}

    def step(self, token):
        """Feeds one token id; returns log-probabilities (vocabulary,) of the next token."""
        out = self.runner(token=np.array([token], np.int32), **self.states)
        self.states = {name: out[f"next_{name}"] for name, _ in self.layout}
        return out["log_probs"][0]


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
