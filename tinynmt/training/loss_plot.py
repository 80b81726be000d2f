"""loss.png: training and validation loss against optimizer steps, from a run's metrics.jsonl.

matplotlib is optional: without it plot_losses returns False and draws nothing. It draws
with the Agg canvas directly, never touching pyplot's global backend. The program that
redraws a run's plot is `python -m tinynmt.plot RUN` (programs/plot.py).
"""
import json
from pathlib import Path


def read_metrics(path):
    """The records of a metrics.jsonl file (a torn last line is skipped)."""
    records = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return [r for r in records if isinstance(r, dict)]


def plot_losses(metrics_path, png_path):
    """Draw the loss curves into png_path; False when matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    from ..files import atomic_write, check_output
    check_output(("loss.png", png_path), [("metrics.jsonl", metrics_path)])  # a link to it, say
    records = read_metrics(metrics_path) if Path(metrics_path).exists() else []
    steps = [r for r in records if r.get("kind") == "step"]
    epochs = [r for r in records if r.get("kind") == "epoch"]
    tests = [r for r in records if r.get("kind") == "test"]
    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if steps:
        ax.plot([r["step"] for r in steps], [r["loss"] for r in steps], color="tab:blue", alpha=0.35,
                linewidth=1, label="train (running)")
    if epochs:
        x = [r["step"] for r in epochs]
        ax.plot(x, [r["train_loss"] for r in epochs], "o-", color="tab:blue", label="train (epoch)")
        ax.plot(x, [r["valid_loss"] for r in epochs], "s-", color="tab:orange", label="validation")
    for r in tests[-1:]:
        ax.plot([r["step"]], [r["test_loss"]], "*", color="tab:green", markersize=12,
                label=f"test ({r.get('split', 'test')})")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy loss")
    ax.grid(True, alpha=0.3)
    if steps or epochs or tests:
        ax.legend()
    fig.tight_layout()
    atomic_write(png_path, lambda f: fig.savefig(f, format="png", dpi=100))
    return True


