"""`python -m tinynmt.train`: train the tutorial's Transformer on Multi30k, as notebook 6 does.

    python -m tinynmt.train                              # the tutorial: 10 epochs, runs/<timestamp>/
    python -m tinynmt.train --device cuda --out runs/gpu
    python -m tinynmt.train --max-steps 20 --out /tmp/x  # a quick look at the speed
    python -m tinynmt.train --resume runs/gpu            # continue from runs/gpu/last.npz
    python -m tinynmt.train --resume runs/gpu --epochs 20
    python -m tinynmt.train --preset strong              # BPE, tied embeddings, averaging, ...
    mpiexec -n 2 python -m tinynmt.train                 # data-parallel on 2 ranks (tinynmt.distributed)

The run folder gets config.json, metrics.jsonl (one JSON object per log window, epoch and
test score), loss.png (with matplotlib), best.npz (best validation loss, or BLEU with
--select-by bleu) and last.npz (resumable: Adam, RNG and position; written at every epoch
end, every --save-every steps, and on Ctrl-C/SIGTERM). With --average-last N it also keeps
epochNNN.npz for the last N epochs and writes their mean, averaged.npz, at the end; the
test split is scored once, with whichever of best.npz and averaged.npz validates better.
--resume takes the run's saved config; only RESUME_OVERRIDES may be changed on the command
line. Exit status: 0 done, 1 non-finite loss or an I/O failure, 2 bad input (one line
`error: ...` on stderr), 130 interrupted (last.npz saved). Under mpiexec every rank stops at
the same step, rank 0 alone prints and writes, and an error on any rank ends the whole job.

From Python: `train(Config(...), should_stop=lambda step: ...)` returns a TrainResult.
"""
import math
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np

from .average import average_checkpoints
from .backend import BackendError
from .checkpoint import CheckpointError, load_checkpoint
from .cli import report_error
from .config import Config, ConfigError, build_parser
from .data import DataError
from .distributed import SINGLE
from .distributed import init as init_distributed
from .evaluate import evaluate_bleu
from .runlog import RunLog
from .speed import keep_freed_memory
from .run_folder import open_run, resume_config
from .trainer import TrainingError

@dataclass
class TrainResult:
    """How a train() call ended: status is finished, early_stopped, max_steps or interrupted."""

    status: str
    run_dir: Path
    step: int
    epoch: int
    best_valid_loss: Optional[float]
    test_loss: Optional[float] = None
    history: List[dict] = field(default_factory=list)


def train(config, should_stop=None, comm=SINGLE):
    """Train (or resume) as the config says; should_stop(step) -> True stops like Ctrl-C does.

    With `comm` from tinynmt.distributed.init() every rank calls this; rank 0 scores the test."""
    config, run_dir, trainer = open_run(config, comm)
    log = RunLog(run_dir, config, active=comm.is_root)
    try:
        log.start(trainer.counters.step, header_lines(config, run_dir, trainer))
        status = run_epochs(trainer, log, run_dir, should_stop)
        test_loss = None
        if status != "interrupted" and comm.is_root:
            chosen = average_last_epochs(trainer, log, run_dir) if config.average_last else "best.npz"
            test_loss = score_test(trainer, log, run_dir, chosen)
    except TrainingError as err:
        kept = (f"{run_dir / 'last.npz'} from step {trainer.saved_step} is untouched"
                if trainer.saved_step is not None else "no checkpoint had been saved yet")
        raise TrainingError(f"{err}; training stopped, {kept}") from None
    finally:
        log.close()
    c = trainer.counters
    return TrainResult(status, run_dir, c.step, c.epoch, c.best_valid_loss, test_loss, list(c.history))


def header_lines(config, run_dir, trainer):
    """What a run prints first: the data, the model's size, where it trains and writes."""
    ranks = trainer.comm.size
    where = f"{ranks} ranks ({config.device})" if ranks > 1 else config.device
    verb = f"Resuming at step {trainer.counters.step}" if config.resume else "Training"
    return [*trainer.data.summary(),
            f"The model has {trainer.model.num_parameters():,} trainable parameters",
            f"{verb} on {where}; run folder {run_dir}"]


def run_epochs(trainer, log, run_dir, should_stop):
    """The epoch loop; returns finished, early_stopped, max_steps or interrupted."""
    config, c = trainer.config, trainer.counters

    def stopping():   # a signal to any rank stops every rank after the same step
        return trainer.comm.any(should_stop is not None and should_stop(c.step))

    while c.epoch < config.epochs:
        if config.patience is not None and c.bad_epochs >= config.patience:
            log.early_stop(c.step, c.epoch, c.bad_epochs, c.best_epoch)
            return "early_stopped"
        plan = trainer.train_batches.plan(c.epoch)
        log.begin_epoch(c.epoch + 1, c.batch, len(plan))
        status = None
        for idx in plan[c.batch:]:
            log.count(trainer.step(idx))
            if c.step % config.log_every == 0:
                trainer.sync()                            # reading losses back waits for the device
                log.step(c.step, c.epoch + 1, c.batch, *trainer.take_window(), trainer.optimizer.lr)
            if config.save_every and c.step % config.save_every == 0:
                trainer.sync()
                trainer.save(run_dir / "last.npz")
            if config.max_steps is not None and c.step >= config.max_steps:
                status = "max_steps"
                break
            if stopping():
                status = "interrupted"
                break
        trainer.sync()
        log.end_bar()
        if status == "interrupted":
            trainer.save(run_dir / "last.npz")
            log.interrupted(c.step, c.epoch + 1, c.batch, len(plan))
            return status
        end_epoch(trainer, log, run_dir, complete=c.batch >= len(plan))
        if status == "max_steps":
            return status
        if stopping():                                        # a signal during validation
            log.interrupted(c.step, c.epoch + 1, c.batch, None)
            return "interrupted"
    return "finished"


def end_epoch(trainer, log, run_dir, complete):
    """Validate, report, keep best.npz (and epochNNN.npz), write last.npz (the epoch may be
    cut short by max_steps)."""
    config, c = trainer.config, trainer.counters
    train_loss = c.epoch_loss_sum / max(c.epoch_batches, 1)
    valid_loss, valid_bleu = trainer.validate()
    if not math.isfinite(valid_loss):
        raise TrainingError(f"non-finite validation loss {valid_loss} after step {c.step}")
    is_best = trainer.is_better(valid_loss, valid_bleu)
    record = log.epoch_record(c.epoch + 1, c.step, train_loss, valid_loss, valid_bleu, is_best,
                              partial=not complete)
    c.history.append(record)
    if is_best:
        c.best_valid_loss, c.best_valid_bleu = valid_loss, valid_bleu
        c.best_epoch, c.bad_epochs = c.epoch + 1, 0
        trainer.save(run_dir / "best.npz", with_optimizer=False)
    elif complete:
        c.bad_epochs += 1
    if complete:
        if config.average_last:
            trainer.save(run_dir / f"epoch{c.epoch + 1:03}.npz", with_optimizer=False)
            for old in epoch_checkpoints(run_dir)[:-config.average_last] if trainer.comm.is_root else []:
                old.unlink()
        trainer.next_epoch()
    trainer.save(run_dir / "last.npz")
    log.write_epoch(record)


def epoch_checkpoints(run_dir):
    """The run's epochNNN.npz files, oldest first."""
    return sorted(Path(run_dir).glob("epoch[0-9][0-9][0-9].npz"))


def average_last_epochs(trainer, log, run_dir):
    """Average the kept epochs into averaged.npz; return the checkpoint that validates better."""
    paths = epoch_checkpoints(run_dir)[-trainer.config.average_last:]
    if len(paths) < 2:
        return "best.npz"
    averaged = average_checkpoints(paths, run_dir / "averaged.npz")
    loss, bleu = trainer.validate(averaged.model.to(trainer.config.device), comm=SINGLE)
    better = trainer.is_better(loss, bleu)
    log.write_average(trainer.counters.step, [p.name for p in paths], loss, bleu, better)
    return "averaged.npz" if better else "best.npz"


def score_test(trainer, log, run_dir, chosen="best.npz"):
    """Test loss and perplexity of the chosen checkpoint on the test split, as the tutorial's
    last cell, and its greedy sacreBLEU (beam search: python -m tinynmt.evaluate --beam 5)."""
    ckpt = load_checkpoint(run_dir / chosen, device=trainer.config.device)
    test_loss = trainer.evaluate(trainer.test_batches, ckpt.model, comm=SINGLE)
    test = trainer.data.test
    bleu, _, _ = evaluate_bleu(ckpt.model, test.src_text, test.trg_text, ckpt.src_vocab,
                               ckpt.trg_vocab, ckpt.tokenizer, beam=1)
    log.write_test(trainer.counters.step, test.name, chosen, test_loss, bleu)
    return test_loss


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
    """A Config from the parsed flags (only the given ones are in `args`); --resume merges."""
    if "resume" in args:
        overrides = {k: v for k, v in args.items() if k != "resume"}
        return resume_config(args["resume"], **overrides)
    return Config.from_preset(args.pop("preset", "tutorial"), **args)


def fail(comm, message, status):
    """Report an error; under mpiexec end every rank with `status` (rank 0 speaks first), else
    return `status`. A rank that fails alone must not leave the others waiting forever."""
    if comm.size > 1 and not comm.is_root:
        time.sleep(1.0)              # rank 0 usually has the same error: let it print and abort
        message = f"{message} (rank {comm.rank})"
    report_error(message, status)
    if comm.size > 1:
        comm.abort(status)
    return status


def main(argv=None):
    """Run the CLI; return the exit status."""
    parser = build_parser(description="Train the tutorial's Transformer on Multi30k.")
    args = vars(parser.parse_args(argv))
    keep_freed_memory()
    flag = StopFlag()
    comm = SINGLE
    try:
        comm = init_distributed()
        config = config_from_args(args)
        flag.install()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # checked at each sync
            result = train(config, should_stop=flag, comm=comm)
    except (CheckpointError, DataError, BackendError, ConfigError) as err:
        return fail(comm, err, 2)
    except (TrainingError, OSError) as err:
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
