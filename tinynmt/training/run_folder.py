"""The run folder: where a new run goes (runs/<timestamp> by default, never over a run nor into a
folder of other files), its lock, and what a run named by --resume continues from
(build.py:build_run builds its Trainer).

Every state a crash or a signal can leave is continued by `python -m tinynmt.train --resume RUN`:
- last.npz there (Ctrl-C, --save-every, any epoch's end): the run goes on from it;
- no last.npz yet (stopped in its first epoch; best.npz alone if between the two saves): the
  run starts again from step 0 with its saved config (config.json, else best.npz's);
- every epoch done but the test not scored (a signal during the last validation, a crash while
  averaging or scoring): the averaging and the test score are done, nothing is trained (for a
  corpus without a test split: the averaging).
A run that has scored its test goes on with a larger --epochs (or --max-steps).
"""
import json
from datetime import datetime
from pathlib import Path

from .checkpoint import CheckpointError, read_arrays, read_config, resolve_checkpoint
from .config import Config, ConfigError
from .distributed import SINGLE
from .lock import RunLock, foreign_files
from .loss_plot import read_metrics

RESUME_OVERRIDES = ("epochs", "max_steps", "cooldown", "max_minutes", "score_test", "device", "log_every",
                    "save_every", "progress", "plot")


def resume_config(run, **overrides):
    """The config a run saved (see saved_config), with some RESUME_OVERRIDES changed, ready to resume."""
    bad = sorted(set(overrides) - set(RESUME_OVERRIDES))
    if bad:
        flags = ", ".join("--" + name.replace("_", "-") for name in bad)
        allowed = ", ".join("--" + name.replace("_", "-") for name in RESUME_OVERRIDES)
        raise ConfigError(f"{flags} cannot change when resuming (the run's config is used); "
                          f"allowed: {allowed}")
    config, run_dir = saved_config(run)
    return config.replace(resume=str(run), out=str(run_dir), **overrides)


def last_checkpoint(run):
    """The run's last.npz, or None when the run must start again from step 0: it stopped in its
    first epoch, before its first last.npz. CheckpointError when neither can be."""
    run_dir = Path(run).expanduser()
    if not run_dir.is_dir() or (run_dir / "last.npz").exists():
        return resolve_checkpoint(run, "last.npz")
    best = run_dir / "best.npz"
    if best.is_file():
        state = read_arrays(best, only_meta=True)[1].get("train_state") or {}
        epoch = (state.get("counters") or {}).get("epoch")
        if epoch != 0:                               # last.npz was there once: it was removed
            raise CheckpointError(f"{run_dir} holds best.npz from epoch {epoch} but no last.npz, which holds "
                                  f"Adam's state: the run cannot go on; score best.npz with "
                                  f"tinynmt.evaluate, or start a new run")
    elif not (run_dir / "config.json").is_file():
        raise CheckpointError(f"{run_dir} holds no last.npz: not a run folder, or no checkpoint saved yet")
    return None


def saved_config(run):
    """(the config the run saved, its folder): last.npz's, or for a run to start again (no
    last.npz yet) config.json's, else best.npz's."""
    path = last_checkpoint(run)
    if path is not None:
        return read_config(path), path.parent
    run_dir = Path(run).expanduser()
    if (run_dir / "config.json").is_file():
        try:
            return Config.from_dict(json.loads((run_dir / "config.json").read_text(encoding="utf-8"))), run_dir
        except ValueError as err:                    # not JSON, or a bad config (ConfigError)
            raise CheckpointError(f"{run_dir / 'config.json'}: {err}") from None
    return read_config(run_dir / "best.npz"), run_dir


def recorded(run_dir, step, kind):
    """Whether metrics.jsonl holds a record of `kind` ("test", "average") at `step`."""
    path = Path(run_dir) / "metrics.jsonl"
    return path.is_file() and any(r.get("kind") == kind and r.get("step") == step for r in read_metrics(path))


def check_not_a_run(run_dir):
    """ConfigError when `run_dir` holds a run (a checkpoint, or the config.json of one that stopped
    before its first) or files that are not a run's."""
    for name in ("last.npz", "best.npz", "config.json"):
        if (run_dir / name).exists():
            raise ConfigError(f"{run_dir} already holds a run ({name}); continue it with "
                              f"--resume {run_dir} or pick another --out")
    others = foreign_files(run_dir) if run_dir.is_dir() else []
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise ConfigError(f"--out {run_dir} holds files that are not a run's ({shown}); a run writes "
                          f"only into a new folder, an empty one or its own: pick another --out")


def choose_run_dir(out):
    """The run folder to create (runs/<timestamp> by default); never one that holds a run or
    other files."""
    if out is None:
        base = Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir, n = base, 1
        while run_dir.exists():
            n += 1
            run_dir = base.with_name(f"{base.name}-{n}")
    else:
        run_dir = Path(out).expanduser()
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--out {run_dir} is a file, not a folder")
    check_not_a_run(run_dir)
    return run_dir


class NoLock:
    """What ranks other than 0 hold: they write nothing."""

    stale_pid = None

    def release(self):
        pass


def lock_run_dir(run_dir, comm=SINGLE):
    """The run folder's lock, held by rank 0 (training/lock.py): RunLockedError while another run
    writes the folder."""
    return RunLock(run_dir).acquire() if comm.is_root else NoLock()
