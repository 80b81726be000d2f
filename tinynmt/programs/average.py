"""`python -m tinynmt.average`: average the weights of several checkpoints of one run.

    python -m tinynmt.average --out runs/x/averaged.npz runs/x/epoch018.npz runs/x/epoch019.npz ...
    average_checkpoints([path, ...], out)          # from Python; returns the Checkpoint written

The mean of the last few epochs' weights (Vaswani et al., 2017; fairseq's
average_checkpoints.py) usually translates better than any one of them: the epochs sit
around one minimum, and their average lies nearer its centre. The checkpoints must come
from the same model (same config and vocabularies); the average is a weights-only
checkpoint (not resumable) with the first one's config, vocabularies and tokenizer.
"""
import argparse
import sys


from ..training.average import average_checkpoints
from ..training.checkpoint import CheckpointError


def main(argv=None):
    """Run the CLI; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tinynmt.average",
                                     description="Average the weights of checkpoints of one run.")
    parser.add_argument("checkpoints", nargs="+", help=".npz checkpoints of the same model")
    parser.add_argument("--out", required=True, help="where to write the averaged checkpoint")
    args = parser.parse_args(argv)
    try:
        average_checkpoints(args.checkpoints, args.out)
    except (CheckpointError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"averaged {len(args.checkpoints)} checkpoints into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
