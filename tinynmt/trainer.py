"""One training run's moving parts: data, model, Adam, loss, dropout RNG and counters.

    trainer = Trainer.create(config, data)            # or Trainer.resume(config, data, ckpt)
    for idx in trainer.train_batches.plan(epoch)[trainer.counters.batch:]:
        trainer.step(trainer.train_batches.make_batch(idx))
    trainer.sync()                                     # read the step losses back (host sync)
    valid_loss = trainer.evaluate(trainer.valid_batches)

A step is the tutorial's: output, _ = model(src, trg[:, :-1]); loss over trg[:, 1:];
zero_grad; backward; clip_grad_norm_; Adam step. Its loss and gradient norm stay device
arrays in `pending` until `sync()`, so a GPU step never waits for the host. Everything
needed to continue bit for bit (NumPy backend) is in `train_state()`: counters, the
dropout generator's state and the running sums; Adam's state goes in the checkpoint arrays.

Legend: B batch, S source length, T target length, V target vocabulary.
"""
import math
from dataclasses import asdict, dataclass, field, fields
from typing import List, Optional

import numpy as np

from .autograd import no_grad
from .backend import Generator, to_numpy, xp_for
from .checkpoint import CheckpointError, save_checkpoint
from .config import model_from_config
from .data import PAD_IDX, DataError, build_dataset, load_dataset, read_multi30k
from .decoding import eval_mode
from .evaluate import evaluate_bleu
from .nn import CrossEntropyLoss, set_dropout_generator
from .optim import SCHEDULES, Adam, clip_grad_norm_


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
    best_valid_bleu: Optional[float] = None
    best_epoch: Optional[int] = None
    bad_epochs: int = 0             # complete epochs since best.npz (for --patience)
    history: List[dict] = field(default_factory=list)   # one record per epoch

    @classmethod
    def from_dict(cls, d):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def load_data(config):
    """Multi30k per the config, cut to limit_train / limit_eval pairs when they are set."""
    common = dict(tokenizer=config.tokenizer, lower=config.lower, min_freq=config.min_freq,
                  max_len=config.train_max_len, bpe_merges=config.bpe_merges,
                  share_vocab=config.share_vocab)
    if config.limit_train is None and config.limit_eval is None:
        data = load_dataset(config.src, config.trg, data_dir=config.data_dir, test=config.test, **common)
    else:
        if config.test in ("train", "val"):
            raise DataError(f"the test split cannot be {config.test!r}")
        pairs = [read_multi30k(name, config.src, config.trg, config.data_dir)
                 for name in ("train", "val", config.test)]
        limits = (config.limit_train, config.limit_eval, config.limit_eval)
        pairs = [tuple(side[:limit] for side in pair) for pair, limit in zip(pairs, limits)]
        data = build_dataset(*pairs, src_lang=config.src, trg_lang=config.trg,
                             test_name=config.test, **common)
    for split in (data.val, data.test):  # val/test pairs are never dropped: they must fit the model
        longest = max((len(ids) for ids in split.src_ids + split.trg_ids), default=0)
        if longest > config.max_length:
            raise DataError(f"{split.name} has a sentence of {longest} ids (<sos>/<eos> included), "
                            f"more than the model's max_length={config.max_length}; raise --max-length")
    return data


def train_step(model, criterion, optimizer, src, trg, clip):
    """The tutorial's step on one batch -> (loss, gradient norm), both still device arrays."""
    output, _ = model(src, trg[:, :-1])                                        # (B, T-1, V)
    loss = criterion(output.reshape(-1, output.shape[-1]), trg[:, 1:].reshape(-1))  # (B * (T-1), V)
    optimizer.zero_grad()
    loss.backward()
    norm = clip_grad_norm_(optimizer.params, clip)
    optimizer.step()
    return loss.data, norm


def perplexity(loss):
    """exp(loss), inf instead of an overflow."""
    return math.exp(loss) if loss < 700 else math.inf


class Trainer:
    """The model, its optimizer and data for one run; see the module docstring."""

    def __init__(self, config, data, model):
        self.config, self.data = config, data
        self.xp = xp_for(config.device)
        self.model = model.to(config.device).train()
        self.generator = Generator(config.seed, config.device)
        set_dropout_generator(self.model, self.generator)
        # built after .to(device): Adam turns each parameter into a view of its flat buffer
        self.optimizer = Adam(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.criterion = CrossEntropyLoss(ignore_index=PAD_IDX, label_smoothing=config.label_smoothing)
        self.eval_criterion = CrossEntropyLoss(ignore_index=PAD_IDX)   # plain NLL: PPL means PPL
        self.schedule = SCHEDULES[config.schedule]
        sizes = dict(batch_size=config.batch_size, max_tokens=config.max_tokens)
        self.train_batches = data.train.batches(shuffle=True, seed=config.seed, **sizes)
        self.valid_batches = data.val.batches(**sizes)
        self.test_batches = data.test.batches(**sizes)
        self.counters = Counters()
        self.pending = []       # (step, loss, grad norm) as device arrays, not yet read back
        self.saved_step = None  # the step of the last.npz written (or resumed from)

    @classmethod
    def create(cls, config, data):
        """A fresh run: weights initialised from config.seed."""
        model = model_from_config(config, len(data.src_vocab), len(data.trg_vocab), PAD_IDX, PAD_IDX)
        return cls(config, data, model)

    @classmethod
    def resume(cls, config, data, ckpt):
        """Continue from a checkpoint's weights, Adam moments, RNG state and counters."""
        for side, ours, theirs in (("source", data.src_vocab, ckpt.src_vocab),
                                   ("target", data.trg_vocab, ckpt.trg_vocab)):
            if ours != theirs:
                raise CheckpointError(f"{ckpt.path}: its {side} vocabulary ({len(theirs)} tokens) "
                                      f"does not match the data's ({len(ours)} tokens)")
        if ckpt.optimizer_state is None or not ckpt.train_state:
            raise CheckpointError(f"{ckpt.path}: not resumable (no optimizer or training state)")
        trainer = cls(config, data, ckpt.model)
        trainer.optimizer.load_state_dict(ckpt.optimizer_state)
        try:
            trainer.generator.set_state(ckpt.train_state["rng"])
            trainer.counters = Counters.from_dict(ckpt.train_state["counters"])
            trainer.saved_step = trainer.counters.step
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"{ckpt.path}: bad training state ({type(err).__name__}: {err})") from None
        return trainer

    def step(self, batch):
        """One optimizer step on a batch; its loss stays on the device until sync()."""
        c = self.counters
        self.optimizer.lr = self.schedule(c.step + 1, self.config.lr, self.config.warmup)
        loss, norm = train_step(self.model, self.criterion, self.optimizer, batch.src, batch.trg,
                                self.config.clip)
        c.step += 1
        c.batch += 1
        self.pending.append((c.step, loss, norm))

    def sync(self):
        """Read pending losses back (one transfer), stop at a non-finite one, add them to the sums."""
        if not self.pending:
            return
        steps = [s for s, _, _ in self.pending]
        losses = to_numpy(self.xp.stack([loss for _, loss, _ in self.pending])).astype(np.float64)
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

    def next_epoch(self):
        """Count the finished epoch and clear its sums."""
        c = self.counters
        c.epoch, c.batch, c.epoch_loss_sum, c.epoch_batches = c.epoch + 1, 0, 0.0, 0

    def evaluate(self, batches, model=None):
        """The tutorial's evaluate(): mean of the batch losses, no dropout, no graph.

        The loss has no label smoothing: validation and test PPL measure the model alone."""
        model = self.model if model is None else model
        losses = []
        with eval_mode(model), no_grad():
            for batch in batches:
                output, _ = model(batch.src, batch.trg[:, :-1])            # (B, T-1, V)
                loss = self.eval_criterion(output.reshape(-1, output.shape[-1]),
                                           batch.trg[:, 1:].reshape(-1))
                losses.append(loss.data)
        return float(to_numpy(self.xp.stack(losses)).astype(np.float64).mean()) if losses else math.nan

    def valid_bleu(self, model=None):
        """Greedy sacreBLEU of the validation split (what --select-by bleu compares)."""
        model = self.model if model is None else model
        val = self.data.val
        bleu, _, _ = evaluate_bleu(model, val.src_text, val.trg_text, self.data.src_vocab,
                                   self.data.trg_vocab, self.data.tokenizer, beam=1)
        return bleu.score

    def validate(self, model=None):
        """(validation loss, greedy validation BLEU or None) of a model (default: the one training)."""
        loss = self.evaluate(self.valid_batches, model)
        bleu = self.valid_bleu(model) if self.config.select_by == "bleu" else None
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
        """JSON-able state to continue exactly here (call sync() first)."""
        assert not self.pending, "sync() before saving: pending losses would be lost"
        return {"counters": asdict(self.counters), "rng": self.generator.get_state(),
                "batches_in_epoch": len(self.train_batches.plan(self.counters.epoch))}

    def save(self, path, with_optimizer=True):
        """Write a checkpoint of the current state (resumable when with_optimizer)."""
        save_checkpoint(path, self.model, self.config, self.data.src_vocab, self.data.trg_vocab,
                        self.data.tokenizer, optimizer=self.optimizer if with_optimizer else None,
                        train_state=self.train_state())
        if with_optimizer:
            self.saved_step = self.counters.step
