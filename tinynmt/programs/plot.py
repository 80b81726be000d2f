"""loss.png: training and validation loss against optimizer steps, from a run's metrics.jsonl.

    python -m tinynmt.plot runs/x           # (re)draw runs/x/loss.png

matplotlib is optional: without it plot_losses returns False and draws nothing. It draws
with the Agg canvas directly, never touching pyplot's global backend. loss.png is replaced
atomically (tinynmt/files.py).
"""
import sys
from pathlib import Path

from ..files import OutputError
from ..training.loss_plot import plot_losses
from .cli import OneLineParser, flush_stdout, report_error, report_os_error


def build_parser():
    parser = OneLineParser(prog="python -m tinynmt.plot", description="Redraw a run's loss.png.")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (holds metrics.jsonl)")
    return parser


def main(argv=None):
    run_dir = Path(build_parser().parse_args(argv).run_dir)
    if not (run_dir / "metrics.jsonl").is_file():
        return report_error(f"{run_dir} holds no metrics.jsonl")
    try:
        if not plot_losses(run_dir / "metrics.jsonl", run_dir / "loss.png"):
            return report_error("matplotlib is not installed (pip install matplotlib)")
        print(run_dir / "loss.png")
        return flush_stdout(0)
    except OutputError as err:
        return report_error(err)
    except OSError as err:
        return report_os_error(err)


if __name__ == "__main__":
    sys.exit(main())
