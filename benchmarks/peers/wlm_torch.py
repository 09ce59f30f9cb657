"""The PyTorch peer: the word_language_model example's default recipe, written here from its
description (the example cannot be downloaded on the benchmark machine, and none of its code is
copied), trained on a token-id stream the toolkit built.

Run: ``python -m benchmarks.peers.wlm_torch --ids IDS.npy --vocabulary-size V [--steps N]
[--warmup W]``. Input: a .npy of int32 ids (the train split as one stream, as the toolkit's
stream mode makes it). Output: one JSON line on stdout, ``{"tokens_per_second": ...,
"ms_per_batch": ..., ...}``, over ``--steps`` batches after ``--warmup`` untimed ones. Without
torch it prints one line saying the peer is skipped and exits 0.

The recipe (word_language_model's defaults)::

    ids (35, 20) -> Embedding(V, 200) -> Dropout(0.2) -> LSTM(200, 200, 2 layers, dropout 0.2)
        -> Dropout(0.2) -> Linear(200, V) -> log_softmax -> NLLLoss (mean over 700 targets)
    per batch: hidden state detached, zero_grad, backward, clip_grad_norm_(0.25),
    p -= lr * grad (lr 20, no optimizer object)
    batches: the stream cut into 20 columns ("batchify"), windows of 35 rows in order

This module never imports TensorFlow: the benchmark runs it in a subprocess of its own.
"""
import argparse
import importlib.util
import json
import sys
import time

SKIPPED = "pytorch-peer: PyTorch row skipped: torch is not installed (pip install -e '.[peers]')"


def available():
    """True if ``import torch`` would find a module, without importing it (the caller may hold
    TensorFlow; a ``sys.modules["torch"] = None`` entry counts as absent)."""
    if "torch" in sys.modules:
        return sys.modules["torch"] is not None
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def batchify(ids, rows):
    """The stream as ``rows`` columns: shape (len // rows, rows); column r continues itself."""
    per_row = len(ids) // rows
    return ids[:per_row * rows].view(rows, per_row).t().contiguous()


def train(ids, vocabulary_size, steps, warmup, batch_size=20, bptt=35, lr=20.0, clip=0.25, seed=0):
    import torch
    from torch import nn

    torch.manual_seed(seed)

    class WordModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(0.2)
            self.encoder = nn.Embedding(vocabulary_size, 200)
            self.rnn = nn.LSTM(200, 200, num_layers=2, dropout=0.2)
            self.decoder = nn.Linear(200, vocabulary_size)
            nn.init.uniform_(self.encoder.weight, -0.1, 0.1)  # the example's initialisation
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)
            nn.init.zeros_(self.decoder.bias)

        def forward(self, x, hidden):
            out, hidden = self.rnn(self.drop(self.encoder(x)), hidden)
            logits = self.decoder(self.drop(out)).view(-1, vocabulary_size)
            return torch.log_softmax(logits, dim=1), hidden

    model = WordModel()
    model.train()
    criterion = nn.NLLLoss()
    data = batchify(torch.from_numpy(ids).long(), batch_size)
    windows = (data.size(0) - 1) // bptt
    hidden = (torch.zeros(2, batch_size, 200), torch.zeros(2, batch_size, 200))
    loss_value = float("nan")
    started = None
    for step in range(warmup + steps):
        if step == warmup:
            started = time.perf_counter()
        start = (step % windows) * bptt
        if start == 0:  # a new pass over the stream starts from a zero state
            hidden = tuple(torch.zeros_like(h) for h in hidden)
        inputs = data[start:start + bptt]
        targets = data[start + 1:start + 1 + bptt].reshape(-1)
        hidden = tuple(h.detach() for h in hidden)  # truncated backprop: no gradient into the past
        model.zero_grad()
        output, hidden = model(inputs, hidden)
        loss = criterion(output, targets)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(p.grad, alpha=-lr)
        loss_value = loss.item()  # also what the example reads each batch
    seconds = time.perf_counter() - started
    return {"tokens_per_second": steps * batch_size * bptt / seconds, "ms_per_batch": 1000 * seconds / steps,
            "steps": steps, "warmup": warmup, "last_loss": loss_value, "torch": torch.__version__,
            "threads": torch.get_num_threads()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", required=True, help=".npy of the train split's id stream")
    parser.add_argument("--vocabulary-size", type=int, required=True)
    parser.add_argument("--steps", type=int, default=200, help="timed batches")
    parser.add_argument("--warmup", type=int, default=10, help="untimed batches first")
    args = parser.parse_args(argv)
    if not available():
        print(SKIPPED)
        return 0
    import numpy as np

    result = train(np.load(args.ids), args.vocabulary_size, args.steps, args.warmup)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
