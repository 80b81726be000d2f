"""loss.png: training and validation loss against optimizer steps, from a run's metrics.jsonl.

    python -m tinynmt.plot runs/x           # (re)draw runs/x/loss.png

matplotlib is optional: without it plot_losses returns False and draws nothing. It draws
with the Agg canvas directly, never touching pyplot's global backend.
"""
import sys
from pathlib import Path

from ..training.plot import plot_losses


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m tinynmt.plot RUN_DIR", file=sys.stderr)
        return 2
    run_dir = Path(argv[0])
    if not (run_dir / "metrics.jsonl").is_file():
        print(f"error: {run_dir} holds no metrics.jsonl", file=sys.stderr)
        return 2
    if not plot_losses(run_dir / "metrics.jsonl", run_dir / "loss.png"):
        print("error: matplotlib is not installed (pip install matplotlib)", file=sys.stderr)
        return 2
    print(run_dir / "loss.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
