"""The run folder: where a new run goes (runs/<timestamp> by default, never over a run) and how
a run named by --resume is reopened with its saved config."""
from datetime import datetime
from pathlib import Path

from .checkpoint import load_checkpoint, read_config, resolve_checkpoint
from .config import ConfigError
from .distributed import SINGLE
from .trainer import Trainer, load_data

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


def open_run(config, comm=SINGLE):
    """(config, run folder, trainer) for a new run, or for the run named by config.resume."""
    comm.use_device(config.device)
    if not config.resume:
        run_dir = choose_run_dir(config.out) if comm.is_root else Path(config.out or "runs")
        config = config.replace(out=str(run_dir))
        trainer = Trainer.create(config, load_data(config), comm)
        trainer.join_ranks()
        if comm.is_root:
            run_dir.mkdir(parents=True, exist_ok=True)  # only once the data and model are fine
        return config, run_dir, trainer
    path = resolve_checkpoint(config.resume, "last.npz")
    ckpt = load_checkpoint(path, device=config.device)
    keep = set(RESUME_OVERRIDES) | {"out", "resume"}
    changed = [k for k, v in ckpt.config.to_dict().items() if k not in keep and getattr(config, k) != v]
    if changed:
        name = changed[0]
        raise ConfigError(f"resuming {path} with a different {name} ({getattr(config, name)!r}; "
                          f"the run used {getattr(ckpt.config, name)!r})")
    config = config.replace(out=str(path.parent))
    trainer = Trainer.resume(config, load_data(config), ckpt, comm)
    trainer.join_ranks()
    c = trainer.counters
    if c.epoch >= config.epochs:
        raise ConfigError(f"the run in {path.parent} already finished {c.epoch} epochs; "
                          f"pass a larger --epochs to go on")
    if config.max_steps is not None and c.step >= config.max_steps:
        raise ConfigError(f"the run in {path.parent} already did {c.step} steps; pass a larger "
                          f"--max-steps (or --max-steps none) to go on")
    return config, path.parent, trainer
