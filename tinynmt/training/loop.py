"""The training loop, top to bottom: build the run, epochs of steps, validation and checkpoints
at each epoch's end, then averaging and the test score.

    result = train(Config(...), should_stop=lambda step: ...)   # -> TrainResult

train() -> build_run (build.py: data, model, Trainer) -> run_epochs (the steps, logging, saving,
stopping) -> end_epoch (validate, best.npz, epochNNN.npz, last.npz) -> average_last_epochs ->
score_test. The Trainer owns the counters and updates them itself (step, sync, record_epoch,
next_epoch); this file reads them to decide what comes next.

The run folder gets config.json, metrics.jsonl (one JSON object per log window, epoch and
test score), loss.png (with matplotlib), best.npz (best validation loss, or BLEU with
--select-by bleu) and last.npz (resumable: Adam, RNG and position; written at every epoch
end, every --save-every steps, and on a stop request). With --average-last N it also keeps
epochNNN.npz for the last N epochs and writes their mean, averaged.npz, at the end; the
test split is scored once, with whichever of best.npz and averaged.npz validates better.
The program around it is `python -m tinynmt.train` (programs/train.py).
"""
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from ..decoding.metrics import evaluate_bleu, tokenized_bleu_score
from .averaging import average_checkpoints
from .build import build_run
from .checkpoint import load_checkpoint
from .distributed import SINGLE
from .runlog import RunLog
from .trainer import TrainingError


@dataclass
class TrainResult:
    """How a train() call ended: status is finished, early_stopped, max_steps, max_minutes or
    interrupted."""

    status: str
    run_dir: Path
    step: int
    epoch: int
    best_valid_loss: Optional[float]
    test_loss: Optional[float] = None
    history: List[dict] = field(default_factory=list)


def train(config, should_stop=None, comm=SINGLE):
    """Train (or resume) as the config says; should_stop(step) -> True stops like Ctrl-C does.

    With `comm` from tinynmt.training.distributed.init() every rank calls this; rank 0 scores the test."""
    config, run_dir, trainer, lock = build_run(config, comm)     # the run folder stays locked until the end
    log = RunLog(run_dir, config, active=comm.is_root)
    try:
        log.start(trainer.counters.step, header_lines(config, run_dir, trainer, lock))
        status = run_epochs(trainer, log, run_dir, should_stop)
        test_loss = None
        if status != "interrupted" and comm.is_root:
            chosen = average_last_epochs(trainer, log, run_dir) if config.average_last else "best.npz"
            if config.score_test and trainer.data.test is not None:
                test_loss = score_test(trainer, log, run_dir, chosen)
    except TrainingError as err:
        kept = (f"{run_dir / 'last.npz'} from step {trainer.saved_step} is untouched"
                if trainer.saved_step is not None else "no checkpoint had been saved yet")
        raise TrainingError(f"{err}; training stopped, {kept}") from None
    finally:
        log.close()
        lock.release()
    c = trainer.counters
    return TrainResult(status, run_dir, c.step, c.epoch, c.best_valid_loss, test_loss, list(c.history))


def header_lines(config, run_dir, trainer, lock):
    """What a run prints first: the data, the model's size, where it trains and writes, and how
    it found the folder (a dead run's lock taken over, a run started again)."""
    ranks = trainer.comm.size
    where = f"{ranks} ranks ({config.device})" if ranks > 1 else config.device
    verb = f"Resuming at step {trainer.counters.step}" if config.resume else "Training"
    notes = []
    if lock.stale_pid is not None:
        notes.append(f"note: process {lock.stale_pid} ended without releasing {run_dir}'s lock "
                     f"(killed?); this run took it over")
    if config.resume and trainer.saved_step is None:
        notes.append(f"note: {run_dir} has no last.npz (the run stopped in its first epoch): "
                     f"starting it again from step 0 with its saved config")
    return [*trainer.data.summary(),
            f"The model has {trainer.model.num_parameters():,} trainable parameters",
            *notes, f"{verb} on {where}; run folder {run_dir}"]


def run_epochs(trainer, log, run_dir, should_stop):
    """The epoch loop; returns finished, early_stopped, max_steps, max_minutes or interrupted."""
    config, c = trainer.config, trainer.counters

    def stopping():   # a signal to any rank stops every rank after the same step
        return trainer.comm.any(should_stop is not None and should_stop(c.step))

    def spent():              # seconds of the run's epochs, a resumed run's earlier ones too
        return sum(c.epoch_seconds())

    def out_of_time(seconds):   # one more epoch at the mean epoch time would pass --max-minutes
        return trainer.comm.any(seconds * (len(c.history) + 1) / len(c.history) > 60 * config.max_minutes)

    def at_end():     # the run's last step: --max-steps, or the one its cooldown was fitted to
        return trainer.end_step is not None and c.step >= trainer.end_step

    def end_status():
        return "max_steps" if c.step >= config.max_steps else "max_minutes"

    def last_epoch():   # the last epoch that ran (1-based) and whether it was cut short
        return (c.epoch + 1, True) if c.batch else (c.epoch, False)

    if at_end():
        return end_status()                                   # resumed to average and score only
    while c.epoch < config.epochs:
        if config.patience is not None and c.bad_epochs >= config.patience:
            log.early_stop(c.step, c.epoch, c.bad_epochs, c.best_epoch)
            return "early_stopped"
        if config.max_minutes is not None and c.history:
            seconds = spent()
            if out_of_time(seconds):
                log.out_of_time(c.step, *last_epoch(), seconds, trainer.end_step)
                return "max_minutes"
        plan = trainer.train_batches.plan(c.epoch)
        log.begin_epoch(c.epoch + 1, c.batch, len(plan))
        status = None
        for idx in plan[c.batch:]:
            if config.cooldown and c.step == trainer.end_step - config.cooldown:
                log.cooldown_begins(c.step, trainer.end_step)
            log.count(trainer.step(idx))
            if c.step % config.log_every == 0:
                trainer.sync()                            # reading losses back waits for the device
                log.step(c.step, c.epoch + 1, c.batch, *trainer.take_window(), trainer.optimizer.lr)
            if config.save_every and c.step % config.save_every == 0:
                trainer.sync()
                trainer.save(run_dir / "last.npz")
            if at_end():
                status = end_status()
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
        if status == "max_minutes":                           # the end of the fitted cooldown
            log.out_of_time(c.step, *last_epoch(), spent(), trainer.end_step)
        if status in ("max_steps", "max_minutes"):
            return status
        if stopping():                                        # a signal during validation
            log.interrupted(c.step, c.epoch + 1, c.batch, None)
            return "interrupted"
    return "finished"


def end_epoch(trainer, log, run_dir, complete):
    """Validate, report, keep best.npz (and epochNNN.npz), write last.npz (the epoch may be
    cut short by max_steps)."""
    config, c = trainer.config, trainer.counters
    train_loss = trainer.epoch_train_loss()
    valid_loss, valid_bleu = trainer.validate()
    if not math.isfinite(valid_loss):
        raise TrainingError(f"non-finite validation loss {valid_loss} after step {c.step}")
    is_best = trainer.is_better(valid_loss, valid_bleu)
    record = log.epoch_record(c.epoch + 1, c.step, train_loss, valid_loss, valid_bleu, is_best,
                              partial=not complete)
    trainer.record_epoch(record)            # the history, the best epoch, epochs without improvement
    if is_best:
        trainer.save(run_dir / "best.npz", with_optimizer=False)
    if complete:
        if config.average_last:
            trainer.save(run_dir / f"epoch{c.epoch + 1:03}.npz", with_optimizer=False)
            for old in epoch_checkpoints(run_dir)[:-config.average_last] if trainer.comm.is_root else []:
                old.unlink()
        trainer.next_epoch()
    if config.max_minutes is not None and config.cooldown:
        trainer.fit_cooldown()                # its end, to where the budget will stop the run
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
    last cell, its greedy sacreBLEU (beam search: python -m tinynmt.evaluate --beam 5) and the
    tokenized BLEU of the same translations (only logged: validation BLEU selects checkpoints)."""
    ckpt = load_checkpoint(run_dir / chosen, device=trainer.config.device)
    test_loss = trainer.evaluate(trainer.test_batches, ckpt.model, comm=SINGLE)
    test = trainer.data.test
    bleu, hypotheses, _ = evaluate_bleu(ckpt.model, test.src_text, test.trg_text, ckpt.src_vocab,
                                        ckpt.trg_vocab, ckpt.tokenizer, beam=1)
    tokenized, signature = tokenized_bleu_score(hypotheses, test.trg_text, trainer.data.trg_lang)
    log.write_test(trainer.counters.step, test.name, chosen, test_loss, bleu, tokenized.score, signature)
    return test_loss


