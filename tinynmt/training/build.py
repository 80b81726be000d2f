"""What a training run starts from: its data, its model and its Trainer, new or resumed.

    config, run_dir, trainer, lock = build_run(config)     # what train() does first
    data = load_data(config)                               # the data alone

A new run gets a fresh folder (tinynmt/training/run_folder.py) and weights seeded from the
config; a run named by config.resume is rebuilt from its last.npz, which must have been made
with the same settings but those that RESUME_OVERRIDES lets change (a run that stopped
before its first last.npz starts again from step 0). Either way the folder's lock is held
(training/lock.py) before anything in it is read or written, until train() releases it.
"""
from pathlib import Path

from .. import fast
from ..data import DataError, build_dataset, load_dataset, read_multi30k
from .checkpoint import load_checkpoint
from .config import ConfigError
from .corpus_data import load_corpus, uses_own_corpus
from .distributed import SINGLE
from .run_folder import (RESUME_OVERRIDES, check_not_a_run, choose_run_dir, last_checkpoint, lock_run_dir,
                         recorded, saved_config)
from .trainer import Trainer


def load_data(config):
    """Multi30k per the config, cut to limit_train / limit_eval pairs when they are set (or the
    run's own corpus: corpus_data.py)."""
    if uses_own_corpus(config):
        data = load_corpus(config)
        if fast.enabled():            # the loading's temporaries leave the heap (fast/cpu.py)
            fast.return_freed_memory()
        return data
    data_config = config.data_config()
    if config.limit_train is None and config.limit_eval is None:
        data = load_dataset(data_config)
    else:
        if config.test in ("train", "val"):
            raise DataError(f"the test split cannot be {config.test!r}")
        pairs = [read_multi30k(name, config.src, config.trg, config.data_dir)
                 for name in ("train", "val", config.test)]
        limits = (config.limit_train, config.limit_eval, config.limit_eval)
        pairs = [tuple(side[:limit] for side in pair) for pair, limit in zip(pairs, limits)]
        data = build_dataset(*pairs, data_config)
    for split in (data.val, data.test):  # val/test pairs are never dropped: they must fit the model
        longest = max((len(ids) for ids in split.src_ids + split.trg_ids), default=0)
        if longest > config.max_length:
            raise DataError(f"{split.name} has a sentence of {longest} ids (<sos>/<eos> included), "
                            f"more than the model's max_length={config.max_length}; raise --max-length")
    return data


def build_run(config, comm=SINGLE):
    """Build the data, the model and the Trainer of a new run, or of the run that config.resume
    names -> (config with its run folder, run folder, trainer, the folder's lock, held). Every
    rank calls it."""
    comm.use_device(config.device)
    if config.resume:
        lock = lock_run_dir(saved_config(config.resume)[1], comm)   # before last.npz is read
        try:
            return (*resume_run(config, comm), lock)
        except BaseException:
            lock.release()
            raise
    run_dir = choose_run_dir(config.out) if comm.is_root else Path(config.out or "runs")
    config = config.replace(out=str(run_dir))
    trainer = Trainer.create(config, load_data(config), comm)
    trainer.join_ranks()
    if comm.is_root:
        run_dir.mkdir(parents=True, exist_ok=True)  # only once the data and model are fine
    lock = lock_run_dir(run_dir, comm)
    try:
        if comm.is_root:
            check_not_a_run(run_dir)                # again, under the lock: no run got there meanwhile
    except BaseException:
        lock.release()
        raise
    return config, run_dir, trainer, lock


def resume_run(config, comm=SINGLE):
    """build_run for config.resume: the Trainer from the run's last.npz (or a new one, for a run
    that stopped before its first last.npz), refused when a setting differs from the run's or
    the run has already gone as far as asked and scored its test."""
    saved, run_dir = saved_config(config.resume)
    keep = set(RESUME_OVERRIDES) | {"out", "resume"}
    changed = [k for k, v in saved.to_dict().items() if k not in keep and getattr(config, k) != v]
    if changed:
        name = changed[0]
        raise ConfigError(f"resuming {run_dir} with a different {name} ({getattr(config, name)!r}; "
                          f"the run used {getattr(saved, name)!r})")
    config = config.replace(out=str(run_dir))
    path = last_checkpoint(config.resume)
    if path is None:                                # no last.npz yet: the run starts again
        trainer = Trainer.create(config, load_data(config), comm)
    else:
        trainer = Trainer.resume(config, load_data(config), load_checkpoint(path, device=config.device), comm)
        trainer.adopt_valid_loss_rule(run_dir / "best.npz")
    trainer.join_ranks()
    c = trainer.counters
    done = c.epoch >= config.epochs or (trainer.end_step is not None and c.step >= trainer.end_step)
    last_work = "test" if trainer.data.test is not None else "average" if config.average_last else None
    if done and (last_work is None or recorded(run_dir, c.step, last_work)):   # else: do what is left
        if c.epoch >= config.epochs:
            raise ConfigError(f"the run in {run_dir} already finished {c.epoch} epochs; "
                              f"pass a larger --epochs to go on")
        if c.step < (config.max_steps or 0):
            raise ConfigError(f"the run in {run_dir} stopped at step {c.step}, where its cooldown fitted "
                              f"to --max-minutes {config.max_minutes:g} ended; pass a larger --max-minutes "
                              f"(or --max-steps) to go on")
        raise ConfigError(f"the run in {run_dir} already did {c.step} steps; pass a larger "
                          f"--max-steps (or --max-steps none) to go on")
    return config, run_dir, trainer
