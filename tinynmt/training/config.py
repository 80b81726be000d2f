"""Training options: one dataclass with the tutorial's defaults, and the named recipes.

    config = Config(hid_dim=128, epochs=3)       # a bad value raises ConfigError (a ValueError)
    config = Config.from_preset("strong", epochs=5)   # a named recipe, some values changed
    Config.from_dict(config.to_dict()) == config

The model's fields are declared once, in ModelConfig (tinynmt/nn/transformer.py), which
Config extends: a Config is what build_transformer takes. Every field has a help line and its
limit beside it (tinynmt/options.py:option); `python -m tinynmt.train` gives each field one
flag (programs/train.py:build_parser).
"""
import dataclasses
from dataclasses import dataclass, fields
from typing import Optional

from ..backend import DEVICES
from ..options import (ConfigError, above_zero, length_ratio, not_negative, one_of, option, positive,
                       probability, seed_range)
from ..data import DataConfig
from ..nn.transformer import ModelConfig
from ..optim import SCHEDULES


SELECT_BY = ("loss", "bleu")

# Named recipes: field values that --preset NAME sets before the explicit flags apply.
# Joint BPE with tied embeddings, label smoothing, warmup + inverse-sqrt decay, early stopping
# on validation BLEU and the last checkpoints averaged. Measured (benchmarks/RESULTS.md): 40.68
# BLEU de->en (test_2016_flickr, beam 5) after 45 minutes on a 2-core CPU in one process.
STRONG = dict(tokenizer="bpe", bpe_merges=8000, share_vocab=True, min_freq=1, tie_embeddings=True,
              enc_dropout=0.1, dec_dropout=0.1, label_smoothing=0.1, schedule="inverse_sqrt", lr=1e-3,
              warmup=1000, batch_size=64, epochs=16, select_by="bleu", patience=5, average_last=5)
# Wu et al. 2021 (the Revisit-MMT repository): fairseq's transformer_tiny, 4+4 layers of width 128,
# feed-forward 256, 4 heads, all embeddings shared, 10k joint BPE merges, residual dropout 0.3
# (attention and activation dropout 0), label smoothing 0.1, Adam (0.9, 0.98), 5e-3 after 2,000
# warmup steps from 1e-7, 2 x 4,096-token steps, clip 25, at most 8,000 updates, patience 10, the
# last 10 epochs averaged, fairseq's initialisation and sinusoidal positions; here also an
# 85-minute budget for the epochs.
TINY = dict(tokenizer="bpe", bpe_merges=10000, share_vocab=True, min_freq=1, tie_embeddings=True,
            init="fairseq", positions="sinusoidal",
            hid_dim=128, enc_layers=4, dec_layers=4, enc_heads=4, dec_heads=4, enc_pf_dim=256,
            dec_pf_dim=256, layer_norms="separate", enc_dropout=0.3, dec_dropout=0.3,
            attention_dropout=0.0, activation_dropout=0.0, label_smoothing=0.1, schedule="inverse_sqrt",
            lr=5e-3, warmup=2000, warmup_init_lr=1e-7, adam_beta2=0.98, clip=25.0, batch_size=None,
            max_tokens=8192, epochs=100, max_steps=8000, max_minutes=85.0, select_by="loss",
            patience=10, average_last=10)
PRESETS = {
    "tutorial": {},     # the defaults: notebook 6 as it is
    "strong": STRONG,
    # The recipe for each direction: strong's values, the languages set. Nothing tried beside it
    # validated better de->en within the hour: 26 epochs, 4,000 BPE merges, dropout 0.2, lr 2e-3,
    # two 12-epoch models ensembled (benchmarks/RESULTS.md, "Translation quality": every try).
    "strong-deen": {**STRONG, "src": "de", "trg": "en"},
    "strong-ende": {**STRONG, "src": "en", "trg": "de"},
    # Wu et al. 2021's fairseq transformer_tiny recipe, ported (TINY above), with the 90 minutes'
    # budget. English->German as published: 64 epochs in 85 min on two ranks of a 2-core CPU,
    # validation beam 5 40.19 where strong-ende gives 38.78. German->English at 5e-3 stalled
    # (training loss flat at 3.77 from epoch 18, validation 3.30 at epoch 23, where English->German
    # was at 2.46); at 3e-3 it learned. Halving the steps (4,096 tokens) at 5e-3 stalled English->
    # German the same way. Those runs had batches a third padding on the target side; cut by
    # padded size (be081ec), German->English fits 69 epochs in the 85 minutes instead of 56 and
    # tests at 41.94 instead of 41.49. German->English then stops at 4,500 updates, the last 1,350
    # cooled to 0 (--cooldown): 78 minutes of epochs, validation beam 5 43.11 where the 85 minutes
    # without it gave 42.76; test 41.98 (benchmarks/RESULTS.md, issue 24: every try).
    # Since 2026-12-07 both with fairseq's own initialisation and fixed sinusoidal positions (the
    # runs above had the tutorial's init and learned positions): English->German (fx), 4,600
    # updates, the last 1,380 cooled, validation beam 5 42.16 where they gave 40.19, test 39.85
    # against 38.98; German->English (dfx), d4's 4,500 updates, validation 43.89 against 43.11,
    # test 43.37 against 41.98. With --max-minutes the cooldown ends early where a slower machine
    # runs out of budget (Trainer.fit_cooldown): on a 2-core AMD EPYC, where that schedule took
    # 102 minutes, tiny-deen as it stands cooled to step 4,130 (seed 2: 3,996) in 85 minutes and
    # tests at 43.31 (seed 2: 43.89).
    "tiny-ende": {**TINY, "src": "en", "trg": "de", "max_steps": 4600, "cooldown": 1380},
    "tiny-deen": {**TINY, "src": "de", "trg": "en", "lr": 3e-3, "max_steps": 4500, "cooldown": 1350},
}


@dataclass
class Config(ModelConfig):
    """Everything a training run needs: the model's fields (ModelConfig, tinynmt/nn/transformer.py)
    and the ones below; the defaults are the tutorial's."""

    # data
    src: str = option("de", "source language: cs, de, en or fr (Multi30k), any label with --train")
    trg: str = option("en", "target language: cs, de, en or fr (Multi30k), any label with --train")
    tokenizer: str = option("whitespace", "tokenizer: whitespace (the tutorial's), unicode, or bpe "
                                          "(subwords learned from the training data)")
    bpe_merges: Optional[int] = option(None, "with --tokenizer bpe: merges to learn (one table for "
                                             "both languages)", positive)
    lower: bool = option(True, "lowercase the text before tokenizing")
    min_freq: int = option(2, "keep tokens seen at least this often in the training data", positive)
    data_dir: Optional[str] = option(None, "folder with hand-placed {split}.{lang}[.gz] files, "
                                           "looked in first")
    # A filter on the training data only; the decoding limit of translate/evaluate, also
    # --max-len, is another thing. The name stays: it is a config.json key of saved runs.
    max_len: Optional[int] = option(None, "training filter: drop training pairs whose source or target "
                                          "has more ids than this, <sos>/<eos> included (validation "
                                          "and test pairs are kept; none: max_length, the model's "
                                          "positions)", positive)
    test: str = option("test_2016_flickr", "Multi30k test split scored at the end")
    limit_train: Optional[int] = option(None, "use only the first N training pairs (tests, smoke runs); "
                                              "the vocabularies come from those pairs (with --data: the folder's)", positive)
    limit_eval: Optional[int] = option(None, "use only the first N validation and N test pairs "
                                             "(tests, smoke runs)", positive)
    # your own corpus instead of Multi30k (tinynmt/training/corpus_data.py)
    data: Optional[str] = option(None, "train on a folder made by python -m tinynmt.prepare (it fixes "
                                       "the languages, tokenizer and vocabularies)")
    train: Optional[str] = option(None, "train on the raw files PREFIX.SRC, PREFIX.TRG (plain or .gz), "
                                        "prepared in memory at each start")
    valid: Optional[str] = option(None, "with --train: the validation files' PREFIX")
    test_prefix: Optional[str] = option(None, "with --train: the test files' PREFIX (--test PREFIX "
                                              "says the same)")
    max_len_ratio: Optional[float] = option(9.0, "with --train: drop training pairs where one side has "
                                                 "more than this many times the other's tokens (Moses' "
                                                 "clean-corpus-n; none: off)", length_ratio)
    # optimisation
    lr: float = option(5e-4, "Adam learning rate (the peak one with --schedule inverse_sqrt)",
                       above_zero)
    batch_size: Optional[int] = option(64, "sentences per batch (a cap when --max-tokens is set)",
                                       positive)
    max_tokens: Optional[int] = option(None, "token budget per batch: padded max(S, T) * B stays "
                                             "under it", positive)
    clip: float = option(1.0, "clip the global gradient norm to this", above_zero)
    epochs: int = option(10, "passes over the training data", positive)
    max_steps: Optional[int] = option(None, "stop after this many optimizer steps in all (validating and "
                                            "saving first)", positive)
    max_minutes: Optional[float] = option(None, "a wall-clock budget for the epochs: stop at an epoch's "
                                                "end when one more epoch (at the mean epoch time so "
                                                "far) would pass this many minutes of the run's epochs, "
                                                "a resumed run's earlier ones included (loading, "
                                                "averaging and the test come on top)", above_zero)
    schedule: str = option("constant", "learning-rate schedule: constant (the tutorial's) or "
                                       "inverse_sqrt", one_of(tuple(SCHEDULES)))
    warmup: int = option(4000, "warmup steps of the inverse_sqrt schedule", positive)
    warmup_init_lr: float = option(0.0, "the inverse_sqrt schedule's rate at step 0, rising linearly "
                                        "to --lr over --warmup steps (fairseq's --warmup-init-lr)",
                                   not_negative)
    cooldown: int = option(0, "with --max-steps: over the last N steps the schedule's rate falls "
                              "linearly towards 0 (N/N ... 1/N of it; 0: no cooldown); with --max-minutes "
                              "it ends earlier where the budget is expected to stop the run (estimated "
                              "at each epoch's end until it begins)", not_negative)
    adam_beta1: float = option(0.9, "Adam's beta1: decay of the gradient's running mean", probability)
    adam_beta2: float = option(0.999, "Adam's beta2: decay of the squared gradient's running mean "
                                      "(0.98 in the Transformer paper and fairseq's recipes)", probability)
    label_smoothing: float = option(0.0, "label smoothing of the cross-entropy loss", probability)
    rdrop: float = option(0.0, "R-Drop's alpha: each batch goes through the model twice (different "
                               "dropout masks, twice the activations) and the loss adds alpha/2 x "
                               "the two outputs' symmetric KL per target token (Liang et al. 2021, "
                               "fairseq's --rdrop-alpha; 0: off)", not_negative)
    weight_decay: float = option(0.0, "Adam's L2 weight decay", not_negative)
    seed: int = option(1234, "seed of the weights, the batch order and dropout", seed_range)
    select_by: str = option("loss", "validation metric that picks best.npz and drives --patience: "
                                    "loss, or bleu (greedy sacreBLEU of the validation split)",
                          one_of(SELECT_BY))
    patience: Optional[int] = option(None, "stop early after this many epochs without a better "
                                           "validation metric (none: run every epoch)", positive)
    average_last: Optional[int] = option(None, "keep the last N epochs' weights and average them "
                                               "at the end into averaged.npz; the test then scores "
                                               "whichever of best.npz/averaged.npz validates "
                                               "better", positive)
    score_test: bool = option(True, "score the test split at the end of the run (--no-score-test "
                                    "while choosing a recipe on validation)")
    # running
    device: str = option("cpu", "cpu (NumPy) or cuda (CuPy)", one_of(DEVICES))
    out: Optional[str] = option(None, "run folder for checkpoints and logs (none: runs/<timestamp>)")
    resume: Optional[str] = option(None, "continue the run in this folder from its last.npz")
    log_every: int = option(50, "log the running loss every N steps (each log waits for the "
                                "device)", positive)
    save_every: Optional[int] = option(None, "also write last.npz every N steps (it is always "
                                             "written at epoch ends)", positive)
    progress: bool = option(True, "show a progress bar on a terminal (else a log line every "
                                  "--log-every steps)")
    plot: bool = option(True, "draw loss.png in the run folder (needs matplotlib)")

    def validate(self):
        """Raise ConfigError naming the first bad value."""
        super().validate()                     # every field's type and limit, the heads
        if self.batch_size is None and self.max_tokens is None:
            raise ConfigError("give batch_size, max_tokens or both")
        if self.cooldown and (self.max_steps is None or self.cooldown > self.max_steps):
            raise ConfigError(f"cooldown={self.cooldown} needs max_steps of at least as many steps, "
                              f"got {self.max_steps}")
        if self.max_len is not None and self.max_len > self.max_length:
            raise ConfigError(f"max_len={self.max_len} is longer than the model's "
                              f"max_length={self.max_length}")

    @property
    def train_max_len(self):
        """The training filter's length in ids (max_len, else the model's max_length): longer
        training pairs are dropped by the data loader (DataConfig.max_len)."""
        return self.max_len if self.max_len is not None else self.max_length

    def data_config(self):
        """The data options of this run, as tinynmt.data takes them."""
        return DataConfig(src=self.src, trg=self.trg, tokenizer=self.tokenizer, bpe_merges=self.bpe_merges,
                          lower=self.lower, share_vocab=self.share_vocab, min_freq=self.min_freq,
                          max_len=self.train_max_len, data_dir=self.data_dir, test=self.test)

    def to_dict(self):
        """A JSON-ready dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_preset(cls, name, **changes):
        """A preset's config, with `changes` applied on top (explicit flags win)."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **changes})

    @classmethod
    def from_dict(cls, d):
        """Rebuild a Config; missing keys take their defaults (older files), unknown keys are an error."""
        if not isinstance(d, dict):
            raise ConfigError(f"a config must be a JSON object, got {type(d).__name__}")
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"unknown config key(s): {', '.join(unknown)}")
        return cls(**d)


