"""Training-curve PNG, drawn from the run's CSV log (so resumed runs keep their history)."""
import csv
import io

from data_pipeline.textio import atomic_write_bytes


def read_log(csv_path):
    with open(csv_path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def plot_curves(csv_path, png_path, title="training"):
    """Perplexity (train, valid) and top-3 accuracy (valid) per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_log(csv_path)
    if not rows:
        return
    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("perplexity", "train"), ("val_perplexity", "valid")):
        left.plot(epochs, [r.get(key, float("nan")) for r in rows], marker="o", label=label)
    left.set_yscale("log")
    left.set_xlabel("epoch")
    left.set_ylabel("perplexity")
    left.legend()
    for key in ("val_top1", "val_top3"):
        right.plot(epochs, [r.get(key, float("nan")) for r in rows], marker="o", label=key[4:])
    right.set_xlabel("epoch")
    right.set_ylabel("valid next-word accuracy")
    right.legend()
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(png_path, buffer.getvalue())
