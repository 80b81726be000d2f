"""What a training run tells the world: stdout lines, a progress bar, metrics.jsonl, loss.png.

The epoch lines are the tutorial's (`Epoch: 01 | Time: 2m 10s`, `Train Loss`, `Val. Loss`),
with target tokens per second added. metrics.jsonl holds one JSON object per line: kind
"start"/"resume", "step" (every log_every steps), "epoch", "interrupted" and "test".
Reading a loss back waits for the device, so it happens only at those points. Under
mpiexec only rank 0's log is active; the others stay silent but read their losses back at
the same steps (that read is a collective).
"""
import json
import sys
import time
from datetime import datetime
from pathlib import Path

from tqdm import tqdm

from .checkpoint import atomic_write
from .config import ConfigError
from .plot import plot_losses
from .trainer import perplexity


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


def _minutes_seconds(seconds):
    """The tutorial's epoch_time(): whole minutes and seconds."""
    return int(seconds / 60), int(seconds - int(seconds / 60) * 60)


class RunLog:
    """Prints, draws and appends metrics for one train() call on one run folder."""

    def __init__(self, run_dir, config, trainer, active=True):
        self.run_dir, self.config, self.trainer = Path(run_dir), config, trainer
        self.active = active            # False: print and write nothing (ranks other than 0)
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.use_bar = active and config.progress and sys.stderr.isatty()
        self.bar, self.file = None, None
        self.epoch_start = self.window_start = time.perf_counter()
        self.epoch_tokens = self.window_tokens = 0
        self.train_seconds = 0.0
        self.n_batches = 0
        self.plot_note_shown = False

    # ----- files
    def start(self):
        """Write config.json, trim metrics.jsonl to the checkpoint's step, print the header."""
        if not self.active:
            return
        for stale in self.run_dir.glob(".*.npz.*.tmp"):   # left by a crash during a save
            stale.unlink(missing_ok=True)
        text = json.dumps(self.config.to_dict(), indent=2) + "\n"
        atomic_write(self.run_dir / "config.json", lambda f: f.write(text.encode("utf-8")))
        step = self.trainer.counters.step
        if self.config.resume:
            self._trim_metrics(step)
        self.file = open(self.metrics_path, "a", encoding="utf-8")
        data, model = self.trainer.data, self.trainer.model
        for line in data.summary():
            self.say(line)
        self.say(f"The model has {model.num_parameters():,} trainable parameters")
        verb = f"Resuming at step {step}" if self.config.resume else "Training"
        ranks = self.trainer.comm.size
        where = f"{ranks} ranks ({self.config.device})" if ranks > 1 else self.config.device
        self.say(f"{verb} on {where}; run folder {self.run_dir}")
        self.write({"kind": "resume" if self.config.resume else "start", "step": step})

    def _trim_metrics(self, step):
        """Drop records after the checkpoint's step (a crash may have logged past it) and torn lines."""
        if not self.metrics_path.exists():
            return
        kept = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("step", 0) <= step:
                kept.append(line + "\n")
        atomic_write(self.metrics_path, lambda f: f.write("".join(kept).encode("utf-8")))

    def say(self, text):
        """Print a line (rank 0 only)."""
        if self.active:
            print(text, flush=True)

    def write(self, record):
        if not self.active:
            return
        record = dict(record, time=round(time.time(), 3))
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def close(self):
        if self.bar is not None:
            self.bar.close()
        if self.file is not None:
            self.file.close()

    def plot(self):
        if not (self.config.plot and self.active):
            return
        if not plot_losses(self.metrics_path, self.run_dir / "loss.png") and not self.plot_note_shown:
            self.say("note: matplotlib is not installed, so no loss.png (pip install matplotlib)")
            self.plot_note_shown = True

    # ----- the loop
    def begin_epoch(self, n_batches):
        c = self.trainer.counters
        self.n_batches = n_batches
        self.epoch_start = self.window_start = time.perf_counter()
        self.epoch_tokens = self.window_tokens = 0
        self.bar = tqdm(total=n_batches, initial=c.batch, desc=f"Epoch {c.epoch + 1:02}", unit="batch",
                        file=sys.stderr, leave=False, disable=not self.use_bar, dynamic_ncols=True)

    def after_step(self, n_trg_tokens):
        """Count the step's target tokens; every log_every steps read the losses back and log them."""
        self.epoch_tokens += n_trg_tokens
        self.window_tokens += n_trg_tokens
        self.bar.update(1)
        c = self.trainer.counters
        if c.step % self.config.log_every:
            return
        self.trainer.sync()
        loss, norm = self.trainer.take_window()
        now = time.perf_counter()
        speed = self.window_tokens / max(now - self.window_start, 1e-9)
        self.window_start, self.window_tokens = now, 0
        lr = self.trainer.optimizer.lr
        self.write({"kind": "step", "step": c.step, "epoch": c.epoch + 1, "batch": c.batch,
                    "loss": loss, "grad_norm": norm, "lr": lr, "tokens_per_s": round(speed, 1)})
        if self.use_bar:
            self.bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{speed:,.0f}", refresh=False)
        else:
            self.say(f"\tstep {c.step:6d} | batch {c.batch:4d}/{self.n_batches} | loss {loss:.3f} | "
                     f"grad norm {norm:.2f} | lr {lr:.2e} | {speed:,.0f} tok/s")

    def end_bar(self):
        """Close the epoch's bar and wait for its last steps (its training time ends here)."""
        self.bar.close()
        self.trainer.sync()
        self.train_seconds = time.perf_counter() - self.epoch_start

    def epoch_record(self, train_loss, valid_loss, valid_bleu, is_best, partial):
        c = self.trainer.counters
        return {"kind": "epoch", "epoch": c.epoch + 1, "step": c.step, "train_loss": train_loss,
                "train_ppl": perplexity(train_loss), "valid_loss": valid_loss,
                "valid_ppl": perplexity(valid_loss), "valid_bleu": valid_bleu, "best": is_best,
                "partial": partial,
                "epoch_time_s": round(time.perf_counter() - self.epoch_start, 3),
                "tokens_per_s": round(self.epoch_tokens / max(self.train_seconds, 1e-9), 1)}

    def write_epoch(self, record):
        """The tutorial's three lines, then the metrics record and the plot."""
        mins, secs = _minutes_seconds(record["epoch_time_s"])
        note = f" (stopped after step {record['step']})" if record["partial"] else ""
        self.say(f"Epoch: {record['epoch']:02} | Time: {mins}m {secs}s | "
                 f"{record['tokens_per_s']:,.0f} target tokens/s{note}")
        self.say(f"\tTrain Loss: {record['train_loss']:.3f} | Train PPL: {record['train_ppl']:7.3f}")
        bleu = "" if record["valid_bleu"] is None else f" |  Val. BLEU: {record['valid_bleu']:.2f}"
        self.say(f"\t Val. Loss: {record['valid_loss']:.3f} |  Val. PPL: {record['valid_ppl']:7.3f}{bleu}"
                 f"{'  (best)' if record['best'] else ''}")
        self.write(record)
        self.plot()

    def interrupted(self, n_batches):
        c = self.trainer.counters
        where = f", batch {c.batch}/{n_batches}" if n_batches else ""
        self.write({"kind": "interrupted", "step": c.step, "epoch": c.epoch + 1, "batch": c.batch})
        self.say(f"Stopped at step {c.step} (epoch {c.epoch + 1}{where}); saved "
                 f"{self.run_dir / 'last.npz'}")
        self.plot()

    def early_stop(self):
        c = self.trainer.counters
        self.say(f"Early stop: no better validation {self.config.select_by} for {c.bad_epochs} epochs "
                 f"(best: epoch {c.best_epoch})")
        self.write({"kind": "early_stop", "step": c.step, "epoch": c.epoch, "best_epoch": c.best_epoch})

    def write_average(self, names, valid_loss, valid_bleu, chosen):
        bleu = "" if valid_bleu is None else f" |  Val. BLEU: {valid_bleu:.2f}"
        self.say(f"Averaged {', '.join(names)} -> averaged.npz\n\t Val. Loss: {valid_loss:.3f} |  "
                 f"Val. PPL: {perplexity(valid_loss):7.3f}{bleu}  "
              f"({'better' if chosen else 'not better'} than best.npz)")
        self.write({"kind": "average", "step": self.trainer.counters.step, "checkpoints": names,
                    "valid_loss": valid_loss, "valid_ppl": perplexity(valid_loss),
                    "valid_bleu": valid_bleu, "chosen": chosen})

    def write_test(self, split, checkpoint, test_loss, bleu):
        step = self.trainer.counters.step
        self.say(f"| Test Loss: {test_loss:.3f} | Test PPL: {perplexity(test_loss):7.3f} | "
                 f"({split}, {checkpoint})")
        self.say(f"| Test BLEU (greedy): {bleu.score:.2f} | {bleu.signature}")
        self.write({"kind": "test", "step": step, "split": split, "checkpoint": checkpoint,
                    "test_loss": test_loss, "test_ppl": perplexity(test_loss),
                    "bleu_greedy": bleu.score, "bleu_signature": bleu.signature})
        self.plot()
