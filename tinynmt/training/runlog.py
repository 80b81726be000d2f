"""What a training run tells the world: stdout lines, a progress bar, metrics.jsonl, loss.png.

The epoch lines are the tutorial's (`Epoch: 01 | Time: 2m 10s`, `Train Loss`, `Val. Loss`),
with target tokens per second added. metrics.jsonl holds one JSON object per line: kind
"start"/"resume", "step" (every log_every steps), "epoch", "cooldown" (where it begins and
ends), the stops "early_stop", "max_minutes" and "interrupted", "average" (the last epochs'
checkpoints averaged) and "test" (greedy sacreBLEU and the tokenized BLEU papers report,
decoding/metrics.py).
It is given plain numbers (the training loop reads the losses back from the device first)
and never touches the trainer (nor imports it). Under mpiexec only rank 0's log is active.
"""
import json
import math
import sys
import time
from pathlib import Path

from tqdm import tqdm

from ..decoding.metrics import TOKENIZED_BLEU_NAME
from .checkpoint import atomic_write
from .loss_plot import plot_losses


def perplexity(loss):
    """exp(loss), inf instead of an overflow."""
    return math.exp(loss) if loss < 700 else math.inf


def _minutes_seconds(seconds):
    """The tutorial's epoch_time(): whole minutes and seconds."""
    return int(seconds / 60), int(seconds - int(seconds / 60) * 60)


class RunLog:
    """Prints, draws and appends metrics for one train() call on one run folder."""

    def __init__(self, run_dir, config, active=True):
        self.run_dir, self.config = Path(run_dir), config
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
    def start(self, step, header):
        """Write config.json, trim metrics.jsonl to the checkpoint's step, print the header lines."""
        if not self.active:
            return
        for stale in self.run_dir.glob(".*.npz.*.tmp"):   # left by a crash during a save
            stale.unlink(missing_ok=True)
        text = json.dumps(self.config.to_dict(), indent=2) + "\n"
        atomic_write(self.run_dir / "config.json", lambda f: f.write(text.encode("utf-8")))
        if self.config.resume:
            self._trim_metrics(step)
        self.file = open(self.metrics_path, "a", encoding="utf-8")
        for line in header:
            self.say(line)
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
    def begin_epoch(self, epoch, batch, n_batches):
        """Epoch `epoch` (1-based) starts, or resumes after `batch` of its `n_batches` batches."""
        self.n_batches = n_batches
        self.epoch_start = self.window_start = time.perf_counter()
        self.epoch_tokens = self.window_tokens = 0
        self.bar = tqdm(total=n_batches, initial=batch, desc=f"Epoch {epoch:02}", unit="batch",
                        file=sys.stderr, leave=False, disable=not self.use_bar, dynamic_ncols=True)

    def count(self, n_trg_tokens):
        """One step done on a batch of `n_trg_tokens` target tokens."""
        self.epoch_tokens += n_trg_tokens
        self.window_tokens += n_trg_tokens
        self.bar.update(1)

    def step(self, step, epoch, batch, loss, norm, lr):
        """The mean loss and gradient norm since the last call: one record and one line (or bar)."""
        now = time.perf_counter()
        speed = self.window_tokens / max(now - self.window_start, 1e-9)
        self.window_start, self.window_tokens = now, 0
        self.write({"kind": "step", "step": step, "epoch": epoch, "batch": batch,
                    "loss": loss, "grad_norm": norm, "lr": lr, "tokens_per_s": round(speed, 1)})
        if self.use_bar:
            self.bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{speed:,.0f}", refresh=False)
        else:
            self.say(f"\tstep {step:6d} | batch {batch:4d}/{self.n_batches} | loss {loss:.3f} | "
                     f"grad norm {norm:.2f} | lr {lr:.2e} | {speed:,.0f} tok/s")

    def end_bar(self):
        """Close the epoch's bar; its training time ends here (read the losses back first)."""
        self.bar.close()
        self.train_seconds = time.perf_counter() - self.epoch_start

    def epoch_record(self, epoch, step, train_loss, valid_loss, valid_bleu, is_best, partial):
        return {"kind": "epoch", "epoch": epoch, "step": step, "train_loss": train_loss,
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

    def interrupted(self, step, epoch, batch, n_batches):
        where = f", batch {batch}/{n_batches}" if n_batches else ""
        self.write({"kind": "interrupted", "step": step, "epoch": epoch, "batch": batch})
        self.say(f"Stopped at step {step} (epoch {epoch}{where}); saved {self.run_dir / 'last.npz'}")
        self.plot()

    def early_stop(self, step, epoch, bad_epochs, best_epoch):
        self.say(f"Early stop: no better validation {self.config.select_by} for {bad_epochs} epochs "
                 f"(best: epoch {best_epoch})")
        self.write({"kind": "early_stop", "step": step, "epoch": epoch, "best_epoch": best_epoch})

    def cooldown_begins(self, step, end_step):
        c = self.config
        fitted = (f", where --max-minutes {c.max_minutes:g} is expected to stop the run "
                  f"(--max-steps {c.max_steps})" if end_step < c.max_steps else "")
        self.say(f"Cooldown: from step {step + 1} the rate falls linearly to 0 at step {end_step}{fitted}")
        self.write({"kind": "cooldown", "step": step, "end_step": end_step})

    def out_of_time(self, step, epoch, partial, seconds, end_step):
        """The --max-minutes stop: before an epoch that would pass the budget, or at the step the
        cooldown was fitted to end at (step == end_step < --max-steps), maybe inside epoch
        `epoch` (partial)."""
        c = self.config
        if step == end_step:
            why = f"the cooldown fitted to --max-minutes {c.max_minutes:g} ends here (--max-steps {c.max_steps})"
        else:
            cut = (f" (the --cooldown of the last {c.cooldown} steps stops {end_step - step} steps short)"
                   if c.cooldown and step < end_step else "")
            why = f"one more would pass --max-minutes {c.max_minutes:g}{cut}"
        part = "part of " if partial else ""
        self.say(f"Time budget: stopping at step {step} after {part}epoch {epoch} ({seconds / 60:.1f} min "
                 f"of epochs); {why}")
        self.write({"kind": "max_minutes", "step": step, "epoch": epoch, "partial": partial,
                    "seconds": seconds})

    def write_average(self, step, names, valid_loss, valid_bleu, chosen):
        bleu = "" if valid_bleu is None else f" |  Val. BLEU: {valid_bleu:.2f}"
        self.say(f"Averaged {', '.join(names)} -> averaged.npz\n\t Val. Loss: {valid_loss:.3f} |  "
                 f"Val. PPL: {perplexity(valid_loss):7.3f}{bleu}  "
                 f"({'better' if chosen else 'not better'} than best.npz)")
        self.write({"kind": "average", "step": step, "checkpoints": names,
                    "valid_loss": valid_loss, "valid_ppl": perplexity(valid_loss),
                    "valid_bleu": valid_bleu, "chosen": chosen})

    def write_test(self, step, split, checkpoint, test_loss, bleu, tokenized_bleu, tokenized_signature):
        """sacreBLEU (`bleu`, a score with its signature) and the tokenized BLEU of the same translations."""
        self.say(f"| Test Loss: {test_loss:.3f} | Test PPL: {perplexity(test_loss):7.3f} | "
                 f"({split}, {checkpoint})")
        self.say(f"| Test BLEU (greedy): {bleu.score:.2f} | {bleu.signature}")
        self.say(f"| Test {TOKENIZED_BLEU_NAME}, greedy: {tokenized_bleu:.2f} | {tokenized_signature}")
        self.write({"kind": "test", "step": step, "split": split, "checkpoint": checkpoint,
                    "test_loss": test_loss, "test_ppl": perplexity(test_loss),
                    "bleu_greedy": bleu.score, "bleu_signature": bleu.signature,
                    "tokenized_bleu_greedy": tokenized_bleu, "tokenized_bleu_signature": tokenized_signature})
        self.plot()
