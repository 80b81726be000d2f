"""One training run's moving parts: data, model, optimizer, loss, dropout RNG and counters.

    trainer = Trainer.create(config, data)            # or Trainer.resume(config, data, ckpt)
    for idx in trainer.train_batches.plan(trainer.counters.epoch)[trainer.counters.batch:]:
        trainer.step(idx)                              # the global batch of sentences idx
    trainer.sync()                                     # read the step losses back (host sync)
    valid_loss, valid_bleu = trainer.validate()
    trainer.record_epoch(record)                       # the epoch's metrics record: history, best
    trainer.next_epoch()

A step is train_step (tinynmt/training/step.py), the tutorial's: forward, loss, backward,
clip, update. Its plug-ins are chosen once, here: the loss (make_loss: the tutorial's
teacher-forced cross-entropy, or R-Drop's with --rdrop), what runs after backward (with one
process nothing; data-parallel, the all-reduce of the gradients) and the clipping
(make_clip, beside make_optimizer, the one place that builds the optimizer). A step's
loss and gradient norm stay device arrays in `pending` until `sync()`, so a GPU step never
waits for the host. The Counters are written by the Trainer's own methods alone (step, sync,
take_window, record_epoch, next_epoch); the loop (tinynmt/training/loop.py) reads them.
Everything needed to continue bit for bit (NumPy backend) is in `train_state()`: counters,
the dropout generator's state and the running sums; the optimizer's state goes in the
checkpoint arrays.

Data-parallel (`comm` from tinynmt.training.distributed, under mpiexec): each rank runs the
step on its share of the global batch's rows, its loss scaled by its share of the tokens, and
the gradients are summed before clipping, so every rank makes the one-process update;
validation is split across the ranks and summed; only rank 0 writes files.
"""
import math
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from typing import List, Optional

import numpy as np

from ..autograd import no_grad
from ..backend import Generator, to_numpy, xp_for
from ..data import PAD_IDX
from ..decoding import Translator, eval_mode
from ..decoding.metrics import loss_rule, sacrebleu_score
from ..nn import CrossEntropyLoss, build_transformer, set_dropout_generator, teacher_forced_loss
from .. import fast
from ..fast.flat_adam import FlatAdam, flat_clip_grad_norm_
from ..optim import SCHEDULES, Adam, budget_end_step, clip_grad_norm_, cooldown_factor
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import ConfigError
from .distributed import (SINGLE, allreduce_flat_gradients, allreduce_gradients, first_different,
                          fingerprint, rank_share_loss, shard_batch)
from .rdrop import rdrop_loss
from .step import keep_gradients, train_step


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss or gradient norm)."""


@dataclass
class Counters:
    """Where the run is and the sums not yet reported; saved in every checkpoint's train_state."""

    epoch: int = 0                  # 0-based epoch in progress
    batch: int = 0                  # batches of that epoch already done
    step: int = 0                   # optimizer steps in all
    epoch_loss_sum: float = 0.0     # sum of this epoch's batch losses (the tutorial averages them)
    epoch_batches: int = 0
    window_loss_sum: float = 0.0    # since the last log line
    window_norm_sum: float = 0.0
    window_steps: int = 0
    best_valid_loss: Optional[float] = None    # best.npz's validation loss (and BLEU, if scored)
    valid_loss_rule: str = "batch_mean"         # how that loss was averaged (Trainer.valid_loss_rule)
    best_valid_bleu: Optional[float] = None
    best_epoch: Optional[int] = None
    bad_epochs: int = 0             # complete epochs since best.npz (for --patience)
    end_step: Optional[int] = None  # where the cooldown ends, fitted to --max-minutes; None: --max-steps
    history: List[dict] = field(default_factory=list)   # one record per epoch

    @classmethod
    def from_dict(cls, d):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def epoch_seconds(self):
        """The seconds each recorded epoch took (a cut-short last one too, a resumed run's earlier ones)."""
        return [record["epoch_time_s"] for record in self.history]


def make_optimizer(params, config):
    """The run's optimizer, built here and nowhere else: Adam (optim/adam.py) with the config's
    lr, betas and weight decay; with the speed corner on (the default) the same update over flat
    buffers, FlatAdam (fast/flat_adam.py)."""
    adam = FlatAdam if fast.enabled() else Adam
    return adam(params, lr=config.lr, betas=(config.adam_beta1, config.adam_beta2),
                weight_decay=config.weight_decay)


def make_clip(optimizer):
    """The clipping that suits the optimizer: clip_grad_norm_, or for FlatAdam the same norm
    taken once over its flat gradient buffer."""
    return flat_clip_grad_norm_ if isinstance(optimizer, FlatAdam) else clip_grad_norm_


def make_after_backward(optimizer, comm):
    """What runs between backward and clipping: nothing with one process; with more, the sum of
    the ranks' gradients (on FlatAdam's buffer in place, when that is the optimizer)."""
    if comm.size == 1:
        return keep_gradients
    return allreduce_flat_gradients(comm) if isinstance(optimizer, FlatAdam) else allreduce_gradients(comm)


def make_loss(config):
    """The loss function of every step, chosen once: R-Drop's with --rdrop ALPHA > 0
    (tinynmt/training/rdrop.py), else the tutorial's teacher-forced cross-entropy."""
    return partial(rdrop_loss, alpha=config.rdrop) if config.rdrop > 0 else teacher_forced_loss


class Trainer:
    """The model, its optimizer and data for one run; see the module docstring."""

    def __init__(self, config, data, model, comm=SINGLE):
        self.config, self.data, self.comm = config, data, comm
        self.xp = xp_for(config.device)
        self.model = model.to(config.device).train()
        # dropout differs by rank; rank 0's stream is the one-process run's
        seed = config.seed if comm.rank == 0 else [config.seed, comm.rank]
        self.generator = Generator(seed, config.device)
        set_dropout_generator(self.model, self.generator)
        # built after .to(device): FlatAdam turns each parameter into a view of its flat buffer
        self.optimizer = make_optimizer(self.model.parameters(), config)
        self.clip_grad_norm = make_clip(self.optimizer)
        self.criterion = CrossEntropyLoss(ignore_index=PAD_IDX, label_smoothing=config.label_smoothing)
        self.loss_fn = make_loss(config)
        self.after_backward = make_after_backward(self.optimizer, comm)
        self.eval_criterion = CrossEntropyLoss(ignore_index=PAD_IDX)   # plain NLL: PPL means PPL
        self.schedule = SCHEDULES[config.schedule]
        sizes = dict(batch_size=config.batch_size, max_tokens=config.max_tokens)
        self.train_batches = data.train.batches(shuffle=True, seed=config.seed, **sizes)
        self.valid_batches = data.val.batches(**sizes)
        self.test_batches = data.test.batches(**sizes) if data.test is not None else None  # own corpus: optional
        self.counters = Counters(valid_loss_rule=self.valid_loss_rule)
        self.pending = []       # (step, loss, grad norm) as device arrays, not yet read back
        self.saved_step = None  # the step of the last.npz written (or resumed from)

    @classmethod
    def create(cls, config, data, comm=SINGLE):
        """A fresh run: weights initialised from config.seed."""
        model = build_transformer(len(data.src_vocab), len(data.trg_vocab), PAD_IDX, PAD_IDX, config,
                                  seed=config.seed)
        return cls(config, data, model, comm)

    @classmethod
    def resume(cls, config, data, ckpt, comm=SINGLE):
        """Continue from a checkpoint's weights, Adam moments, RNG state and counters."""
        for side, ours, theirs in (("source", data.src_vocab, ckpt.src_vocab),
                                   ("target", data.trg_vocab, ckpt.trg_vocab)):
            if ours != theirs:
                raise CheckpointError(f"{ckpt.path}: its {side} vocabulary ({len(theirs)} tokens) "
                                      f"does not match the data's ({len(ours)} tokens)")
        if ckpt.optimizer_state is None or not ckpt.train_state:
            raise CheckpointError(f"{ckpt.path}: not resumable (no optimizer or training state)")
        ranks = ckpt.train_state.get("ranks", 1)
        if ranks != comm.size:
            raise CheckpointError(f"{ckpt.path}: the run was trained on {ranks} process(es); "
                                  f"resume it with the same number (mpiexec -n {ranks})")
        trainer = cls(config, data, ckpt.model, comm)
        trainer.optimizer.load_state_dict(ckpt.optimizer_state)
        try:
            rngs = ckpt.train_state["rank_rngs"] if comm.size > 1 else [ckpt.train_state["rng"]]
            trainer.generator.set_state(rngs[comm.rank])
            trainer.counters = Counters.from_dict(ckpt.train_state["counters"])
            trainer.saved_step = trainer.counters.step
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"{ckpt.path}: bad training state ({type(err).__name__}: {err})") from None
        if any(getattr(ckpt.config, k) != getattr(config, k) for k in ("max_steps", "cooldown", "max_minutes")):
            trainer.counters.end_step = None        # new limits: the cooldown is fitted to them again
        return trainer

    @property
    def end_step(self):
        """The step the run ends at: --max-steps, or the earlier one its cooldown was fitted to
        so that --max-minutes does not cut it short (fit_cooldown); None: no limit."""
        return self.counters.end_step or self.config.max_steps

    def fit_cooldown(self):
        """--max-minutes with a --cooldown: end the cooldown where the budget is expected to stop
        the run (optim/schedules.py:budget_end_step), so that a slower machine still cools the
        rate to 0. At each epoch's end until the cooldown begins; every rank takes the earliest
        estimate, so all keep the same rates."""
        config, c = self.config, self.counters
        end = budget_end_step(60 * config.max_minutes, c.epoch_seconds(), c.step, config.max_steps,
                              config.cooldown, self.end_step)
        c.end_step = min(self.comm.allgather(end))

    def learning_rate(self, step):
        """The rate of optimizer step `step` (1, 2, ...): the schedule's, times the cooldown's."""
        config = self.config
        rate = self.schedule(step, config.lr, config.warmup, config.warmup_init_lr)
        return rate * cooldown_factor(step, self.end_step, config.cooldown)

    def step(self, idx):
        """One optimizer step on the global batch of sentences `idx` (this rank takes its share);
        its loss stays on the device until sync(). Returns the global batch's target tokens."""
        c = self.counters
        batch, share, n_trg_tokens = shard_batch(self.train_batches, idx, self.comm)
        self.optimizer.lr = self.learning_rate(c.step + 1)
        loss, norm = train_step(self.model, self.criterion, self.optimizer, batch.src, batch.trg,
                                self.config.clip, loss_fn=rank_share_loss(self.loss_fn, share),
                                after_backward=self.after_backward, clip_grad_norm=self.clip_grad_norm)
        c.step += 1
        c.batch += 1
        self.pending.append((c.step, loss, norm))
        return n_trg_tokens

    def sync(self):
        """Read pending losses back (one transfer), stop at a non-finite one, add them to the sums."""
        if not self.pending:
            return
        steps = [s for s, _, _ in self.pending]
        losses = to_numpy(self.xp.stack([loss for _, loss, _ in self.pending])).astype(np.float64)
        losses = self.comm.sum(losses)        # the ranks' parts of each global batch's loss
        norms = to_numpy(self.xp.stack([self.xp.asarray(n) for _, _, n in self.pending])).astype(np.float64)
        self.pending = []
        for step, loss, norm in zip(steps, losses.tolist(), norms.tolist()):
            if not math.isfinite(loss) or not math.isfinite(norm):
                what = f"loss {loss}" if not math.isfinite(loss) else f"gradient norm {norm}"
                raise TrainingError(f"non-finite {what} at step {step} (epoch {self.counters.epoch + 1})")
            c = self.counters    # one by one, so the sums do not depend on when syncs happen
            c.epoch_loss_sum += loss
            c.epoch_batches += 1
            c.window_loss_sum += loss
            c.window_norm_sum += norm
            c.window_steps += 1

    def take_window(self):
        """Mean loss and gradient norm since the last call (after sync()); resets the window."""
        c = self.counters
        n = max(c.window_steps, 1)
        means = c.window_loss_sum / n, c.window_norm_sum / n
        c.window_loss_sum = c.window_norm_sum = 0.0
        c.window_steps = 0
        return means

    def epoch_train_loss(self):
        """The mean of this epoch's batch losses so far (after sync()), as the tutorial reports it."""
        return self.counters.epoch_loss_sum / max(self.counters.epoch_batches, 1)

    def record_epoch(self, record):
        """Count a validated epoch from its metrics record (epoch, valid_loss, valid_bleu, best,
        partial): into the history; a best one's numbers become best.npz's, any other complete
        one is one more epoch without improvement (for --patience)."""
        c = self.counters
        c.history.append(record)
        if record["best"]:
            c.best_valid_loss, c.best_valid_bleu = record["valid_loss"], record["valid_bleu"]
            c.best_epoch, c.bad_epochs = record["epoch"], 0
        elif not record["partial"]:
            c.bad_epochs += 1

    def next_epoch(self):
        """Count the finished epoch and clear its sums."""
        c = self.counters
        c.epoch, c.batch, c.epoch_loss_sum, c.epoch_batches = c.epoch + 1, 0, 0.0, 0

    @property
    def valid_loss_rule(self):
        """How evaluate() averages a split: "batch_mean" (batches of sentences) or "per_token"."""
        return loss_rule(self.config.max_tokens)

    def evaluate(self, batches, model=None, comm=None):
        """A split's loss, no dropout, no graph: with batches of sentences the tutorial's evaluate(),
        the mean of the batch losses; under a token budget the loss per predicted token, as fairseq:
        there a split is a few uneven batches (Multi30k's validation: 3 at 8,192 tokens) whose
        mean moved by 0.4 when the same model's batches were cut otherwise.

        The loss has no label smoothing: validation and test PPL measure the model alone.
        The ranks of `comm` (default: the run's) each take every size-th batch."""
        model = self.model if model is None else model
        comm = self.comm if comm is None else comm
        per_token = self.valid_loss_rule == "per_token"
        losses, weights = [], []
        with eval_mode(model), no_grad():
            for idx in comm.shard(batches.plan()):
                batch = batches.make_batch(idx)
                weights.append(batch.n_pred_tokens if per_token else 1)
                loss = teacher_forced_loss(model, self.eval_criterion, batch.src, batch.trg).data
                losses.append(loss * weights[-1])                     # the batch's summed NLL, or its mean
        total = to_numpy(self.xp.stack(losses)).astype(np.float64).sum() if losses else 0.0
        total, count = comm.sum([total, sum(weights)])
        return float(total / count) if count else math.nan

    def adopt_valid_loss_rule(self, best_path):
        """For a run saved under another rule (a token-budget run from before per-token losses):
        measure best.npz's validation loss again this way, so later epochs compare like with like."""
        c = self.counters
        if c.valid_loss_rule == self.valid_loss_rule:
            return
        if c.best_valid_loss is not None and best_path.exists():
            best = load_checkpoint(best_path, device=self.config.device).model
            c.best_valid_loss = self.evaluate(self.valid_batches, best)
        c.valid_loss_rule = self.valid_loss_rule

    def valid_bleu(self, model=None, comm=None):
        """Greedy sacreBLEU of the validation split (what --select-by bleu compares); the ranks
        of `comm` (default: the run's) each translate every size-th sentence."""
        model = self.model if model is None else model
        comm = self.comm if comm is None else comm
        val, data = self.data.val, self.data
        translator = Translator(model, data.src_vocab, data.trg_vocab, data.tokenizer, beam=1)
        hypotheses = [None] * len(val.src_text)
        for rank, part in enumerate(comm.allgather(translator.translate(comm.shard(val.src_text)))):
            hypotheses[rank::comm.size] = part
        score, _ = sacrebleu_score(hypotheses, val.trg_text, lowercase=data.tokenizer.lower)
        return score.score

    def validate(self, model=None, comm=None):
        """(validation loss, greedy validation BLEU or None) of a model (default: the one training)."""
        loss = self.evaluate(self.valid_batches, model, comm)
        bleu = self.valid_bleu(model, comm) if self.config.select_by == "bleu" else None
        return loss, bleu

    def is_better(self, loss, bleu):
        """Does (loss, bleu) beat best.npz's by the config's select_by metric?"""
        c = self.counters
        if c.best_valid_loss is None:
            return True
        if self.config.select_by == "bleu":
            return bleu > c.best_valid_bleu
        return loss < c.best_valid_loss

    def train_state(self):
        """JSON-able state to continue exactly here (call sync() first; every rank calls it)."""
        assert not self.pending, "sync() before saving: pending losses would be lost"
        state = {"counters": asdict(self.counters), "rng": self.generator.get_state(),
                 "batches_in_epoch": len(self.train_batches.plan(self.counters.epoch))}
        if self.comm.size > 1:
            state.update(ranks=self.comm.size, rank_rngs=self.comm.allgather(state["rng"]))
        return state

    def save(self, path, with_optimizer=True):
        """Write a checkpoint of the current state (resumable when with_optimizer).

        Every rank calls it (their dropout states are gathered); rank 0 alone writes."""
        state = self.train_state()
        if self.comm.is_root:
            save_checkpoint(path, self.model, self.config, self.data.src_vocab, self.data.trg_vocab,
                            self.data.tokenizer, optimizer=self.optimizer if with_optimizer else None,
                            train_state=state)
        if with_optimizer:
            self.saved_step = self.counters.step

    def join_ranks(self):
        """Check that every rank has rank 0's config and data (else ConfigError), then give every
        rank rank 0's weights. Every rank calls it once, before the first step."""
        config = {k: v for k, v in self.config.to_dict().items() if k not in ("out", "resume")}
        data = self.data
        sizes = [len(data.src_vocab), len(data.trg_vocab), len(data.train), len(data.val),
                 len(data.test) if data.test is not None else 0]
        lengths = [int(self.train_batches.src.lengths.sum()), int(self.train_batches.trg.lengths.sum())]
        for what, value in (("config", fingerprint(config)),
                            ("data or checkpoint", fingerprint(sizes, lengths, self.counters.step))):
            rank = first_different(self.comm, value)
            if rank is not None:
                raise ConfigError(f"rank {rank}'s {what} differs from rank 0's: start every rank "
                                  f"with the same data and flags")
        for param in self.model.parameters():     # in place: each may be a view of FlatAdam's buffer
            self.comm.broadcast_(param.data)
