"""The run folder: where a new run goes (runs/<timestamp> by default, never over a run) and the
saved config that a run named by --resume continues with (build.py:build_run builds its Trainer)."""
from datetime import datetime
from pathlib import Path

from .checkpoint import read_config, resolve_checkpoint
from .config import ConfigError

RESUME_OVERRIDES = ("epochs", "max_steps", "device", "log_every", "save_every", "progress", "plot")


def resume_config(run, **overrides):
    """The config saved in a run's last.npz, with some RESUME_OVERRIDES changed, ready to resume."""
    bad = sorted(set(overrides) - set(RESUME_OVERRIDES))
    if bad:
        flags = ", ".join("--" + name.replace("_", "-") for name in bad)
        allowed = ", ".join("--" + name.replace("_", "-") for name in RESUME_OVERRIDES)
        raise ConfigError(f"{flags} cannot change when resuming (the run's config is used); "
                          f"allowed: {allowed}")
    path = resolve_checkpoint(run, "last.npz")
    return read_config(path).replace(resume=str(run), out=str(path.parent), **overrides)


def choose_run_dir(out):
    """The run folder to create (runs/<timestamp> by default); never one that holds a run."""
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
    for name in ("last.npz", "best.npz"):
        if (run_dir / name).exists():
            raise ConfigError(f"{run_dir} already holds a run ({name}); continue it with "
                              f"--resume {run_dir} or pick another --out")
    return run_dir
