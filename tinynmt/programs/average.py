"""`python -m tinynmt.average`: average the weights of several checkpoints of one run.

    python -m tinynmt.average --out runs/x/averaged.npz runs/x/epoch018.npz runs/x/epoch019.npz ...
    average_checkpoints([path, ...], out)          # from Python; returns the Checkpoint written

The mean of the last few epochs' weights (Vaswani et al., 2017; fairseq's
average_checkpoints.py) usually translates better than any one of them: the epochs sit
around one minimum, and their average lies nearer its centre. The checkpoints must come
from the same model (same config and vocabularies); the average is a weights-only
checkpoint (not resumable) with the first one's config, vocabularies and tokenizer.
--out is written atomically and may not be one of the checkpoints averaged.
"""
import sys

from ..files import OutputError, check_output
from ..training.averaging import average_checkpoints
from ..training.checkpoint import CheckpointError
from .cli import OneLineParser, flush_stdout, report_error, report_os_error


def build_parser():
    parser = OneLineParser(prog="python -m tinynmt.average",
                           description="Average the weights of checkpoints of one run.")
    parser.add_argument("checkpoints", nargs="+", help=".npz checkpoints of the same model")
    parser.add_argument("--out", required=True, help="where to write the averaged checkpoint")
    return parser


def main(argv=None):
    """Run the CLI; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        check_output(("--out", args.out), [("checkpoint", path) for path in args.checkpoints])
        average_checkpoints(args.checkpoints, args.out)
        print(f"averaged {len(args.checkpoints)} checkpoints into {args.out}")
        return flush_stdout(0)
    except (CheckpointError, OutputError) as err:
        return report_error(err)
    except OSError as err:
        return report_os_error(err)


if __name__ == "__main__":
    sys.exit(main())
