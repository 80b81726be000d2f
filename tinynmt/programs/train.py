"""`python -m tinynmt.train`: train the tutorial's Transformer on Multi30k, as notebook 6 does.

    python -m tinynmt.train                              # the tutorial: 10 epochs, runs/<timestamp>/
    python -m tinynmt.train --device cuda --out runs/gpu
    python -m tinynmt.train --max-steps 20 --out /tmp/x  # a quick look at the speed
    python -m tinynmt.train --resume runs/gpu            # continue from runs/gpu/last.npz
    python -m tinynmt.train --resume runs/gpu --epochs 20
    python -m tinynmt.train --preset strong              # BPE, tied embeddings, averaging, ...
    python -m tinynmt.train --data data/xx-yy            # a corpus made by python -m tinynmt.prepare
    python -m tinynmt.train --train c/train --valid c/dev --test c/test --src xx --trg yy   # raw files
    mpiexec -n 2 python -m tinynmt.train                 # data-parallel on 2 ranks (tinynmt.training.distributed)

The run folder gets config.json, metrics.jsonl (one JSON object per log window, epoch and
test score), loss.png (with matplotlib), best.npz (best validation loss, or BLEU with
--select-by bleu) and last.npz (resumable: Adam, RNG and position; written at every epoch
end, every --save-every steps, and on Ctrl-C/SIGTERM). With --average-last N it also keeps
epochNNN.npz for the last N epochs and writes their mean, averaged.npz, at the end; the
test split is scored once, with whichever of best.npz and averaged.npz validates better.
--resume takes the run's saved config; only RESUME_OVERRIDES may be changed on the command
line. --resume RUN continues whatever a crash left (tinynmt/training/run_folder.py lists the
states). The folder is locked while the run writes it (RUN/.lock): a second run into it stops
with one line naming the first's pid; --out into a folder of other files is refused. Every
flag's value is checked as it is parsed, and a model too big for the memory before the data
loads. Exit status: 0 done, 1 non-finite loss or an I/O failure, 2 bad input (one line
`error: ...` on stderr), 130 interrupted (last.npz saved). Under mpiexec every rank stops at
the same step, rank 0 alone prints and writes, and an error on any rank ends the whole job.

From Python: `train(Config(...), should_stop=lambda step: ...)` returns a TrainResult.
"""
import os
import signal
import sys
import time
import traceback

import numpy as np

from ..backend import BackendError
from ..training.checkpoint import CheckpointError
from .cli import quiet_stdout, report_error
from ..files import OutputError
from ..options import ConfigError
from ..training.config import PRESETS, Config
from ..training.corpus_data import with_prepared_fields
from ..training.loop import train
from .cli import parser_from_fields
from ..data import DataError
from ..training.distributed import SINGLE
from ..training.distributed import init as init_distributed
from ..fast.cpu import keep_freed_memory
from ..training.lock import RunLockedError
from ..training.run_folder import resume_config
from ..training.trainer import TrainingError


def build_parser(prog="python -m tinynmt.train", description=None):
    """One flag per Config field (see cli.parser_from_fields), and --preset."""
    parser = parser_from_fields(Config, prog, description)
    parser.add_argument("--preset", choices=list(PRESETS), metavar="NAME",
                        help=f"start from a named recipe: {', '.join(PRESETS)} (their values are in "
                        "tinynmt/training/config.py's PRESETS); flags given override it (default: tutorial)")
    return parser


class StopFlag:
    """SIGINT/SIGTERM set a flag the loop checks after each step; a second signal stops at once."""

    def __init__(self):
        self.signum, self._previous = None, {}

    def __call__(self, step):
        return self.signum is not None

    def install(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        print("\nstopping after this step to save last.npz (signal again to stop at once)",
              file=sys.stderr, flush=True)


def config_from_args(args):
    """A Config from the parsed flags (only the given ones are in `args`); --resume merges.
    --data fills the languages, tokenizer and vocabulary options from the prepared folder;
    with --train, --test names the test files' PREFIX (test_prefix)."""
    if "resume" in args:
        overrides = {k: v for k, v in args.items() if k != "resume"}
        return resume_config(args["resume"], **overrides)
    if args.get("data"):
        args = with_prepared_fields(args)
    elif args.get("train") and "test" in args:
        args["test_prefix"] = args.pop("test")
    return Config.from_preset(args.pop("preset", "tutorial"), **args)


def check_memory(config):
    """ConfigError when the model's weights, gradients and Adam's two moments (four float32 copies
    of the parameters, the embeddings not even counted) cannot fit in this machine's memory."""
    d = config.hid_dim
    params = (config.enc_layers * (4 * d * d + 2 * d * config.enc_pf_dim)
              + config.dec_layers * (8 * d * d + 2 * d * config.dec_pf_dim) + 2 * config.max_length * d)
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):   # not on this system: the run will tell
        return
    if 16 * params > memory:
        raise ConfigError(f"the model needs at least {16 * params / 2**30:,.1f} GiB for {params:,} "
                          f"parameters (hid_dim {d}, {config.enc_layers}+{config.dec_layers} layers, "
                          f"max_length {config.max_length}), their gradients and Adam's moments; "
                          f"this machine has {memory / 2**30:,.1f} GiB")


def fail(comm, message, status):
    """Report an error; under mpiexec end every rank with `status` (rank 0 speaks first), else
    return `status`. A rank that fails alone must not leave the others waiting forever."""
    if comm.size > 1 and not comm.is_root:
        time.sleep(1.0)              # rank 0 usually has the same error: let it print and abort
        message = f"{message} (rank {comm.rank})"
    report_error(message, status)
    if comm.size > 1:
        sys.stderr.flush()
        time.sleep(0.5)              # mpiexec forwards the line before the abort ends the job
        comm.abort(status)
    return status


def main(argv=None):
    """Run the CLI; return the exit status."""
    parser = build_parser(description="Train the tutorial's Transformer on Multi30k or your own corpus.")
    args = vars(parser.parse_args(argv))
    keep_freed_memory()
    flag = StopFlag()
    comm = SINGLE
    try:
        comm = init_distributed()
        config = config_from_args(args)
        check_memory(config)
        flag.install()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # checked at each sync
            result = train(config, should_stop=flag, comm=comm)
    except (CheckpointError, DataError, BackendError, ConfigError, OutputError, RunLockedError) as err:
        return fail(comm, err, 2)
    except MemoryError as err:
        return fail(comm, f"out of memory: {err}; a smaller model or --batch-size/--max-tokens", 2)
    except TrainingError as err:
        return fail(comm, err, 1)
    except OSError as err:
        if err.filename is None:        # stdout's (a full disk, a closed pipe): the log is in the run folder
            quiet_stdout()
            err = f"cannot write standard output: {err.strerror or err}"
        return fail(comm, err, 1)
    except KeyboardInterrupt:
        return fail(comm, "interrupted", 130)
    except Exception:
        if comm.size == 1:
            raise
        return fail(comm, traceback.format_exc().rstrip(), 1)
    finally:
        flag.restore()
    if result.status == "interrupted":
        launcher = f"mpiexec -n {comm.size} " if comm.size > 1 else ""
        if comm.is_root:
            print(f"interrupted at step {result.step}; last.npz saved. Resume with:\n"
                  f"    {launcher}python -m tinynmt.train --resume {result.run_dir}", flush=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
