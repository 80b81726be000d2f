"""Training options: one dataclass, the tutorial's defaults, and the command line built from it.

    config = Config(hid_dim=128, epochs=3)       # a bad value raises ConfigError (a ValueError)
    config = Config.from_preset("strong", epochs=5)   # a named recipe, some values changed
    Config.from_dict(config.to_dict()) == config
    parser = build_parser(); args = parser.parse_args(["--hid-dim", "128", "--no-lower"])

Every field has a help line and its limit beside it (tinynmt.cli.option); the parser gives
each field one flag (`hid_dim` -> `--hid-dim`, booleans as `--lower/--no-lower`, optional
numbers accept `none`). `vars(args)` holds only the flags given: what `--resume` needs to
tell overrides from defaults.
"""
import dataclasses
from dataclasses import dataclass, fields
from typing import Optional

from .backend import DEVICES
from .cli import (above_zero, base_type, is_optional, not_negative, one_of, option, parser_from_fields,
                  positive, probability)
from .data import DataConfig
from .nn.transformer import LAYER_NORMS
from .optim import SCHEDULES


class ConfigError(ValueError):
    """A config value is out of range, of the wrong type, or unknown."""


SELECT_BY = ("loss", "bleu")

# Named recipes: field values that --preset NAME sets before the explicit flags apply.
PRESETS = {
    "tutorial": {},     # the defaults: notebook 6 as it is
    # Joint BPE with tied embeddings, label smoothing, warmup + inverse-sqrt decay, early
    # stopping on validation BLEU and the last checkpoints averaged. Measured: 40.4 BLEU
    # (test_2016_flickr, beam 5) after 48 minutes on a 2-core CPU (benchmarks/RESULTS.md).
    "strong": dict(tokenizer="bpe", bpe_merges=8000, share_vocab=True, min_freq=1,
                   tie_embeddings=True, enc_dropout=0.1, dec_dropout=0.1, label_smoothing=0.1,
                   schedule="inverse_sqrt", lr=1e-3, warmup=1000, batch_size=64, epochs=16,
                   select_by="bleu", patience=5, average_last=5),
}


@dataclass
class Config:
    """Everything a training run needs; the defaults are the tutorial's."""

    # data
    src: str = option("de", "source language (cs, de, en, fr)")
    trg: str = option("en", "target language (cs, de, en, fr)")
    tokenizer: str = option("whitespace", "tokenizer: whitespace (the tutorial's), unicode, or bpe "
                                          "(subwords learned from the training data)")
    bpe_merges: Optional[int] = option(None, "with --tokenizer bpe: merges to learn (one table for "
                                             "both languages)", positive)
    lower: bool = option(True, "lowercase the text before tokenizing")
    share_vocab: bool = option(False, "one vocabulary built from both languages' training text "
                                      "(with --tie-embeddings the encoder shares it too)")
    min_freq: int = option(2, "keep tokens seen at least this often in the training data", positive)
    data_dir: Optional[str] = option(None, "folder with hand-placed {split}.{lang}[.gz] files, "
                                           "looked in first")
    max_len: Optional[int] = option(None, "drop training pairs with more ids than this, <sos>/<eos> "
                                          "included (none: max_length, the model's positions)", positive)
    test: str = option("test_2016_flickr", "Multi30k test split scored at the end")
    limit_train: Optional[int] = option(None, "use only the first N training pairs (tests, smoke runs); "
                                              "the vocabularies come from those pairs", positive)
    limit_eval: Optional[int] = option(None, "use only the first N validation and N test pairs "
                                             "(tests, smoke runs)", positive)
    # model
    hid_dim: int = option(256, "model width (embedding and hidden size)", positive)
    enc_layers: int = option(3, "encoder layers", positive)
    dec_layers: int = option(3, "decoder layers", positive)
    enc_heads: int = option(8, "encoder attention heads (must divide hid_dim)", positive)
    dec_heads: int = option(8, "decoder attention heads (must divide hid_dim)", positive)
    enc_pf_dim: int = option(512, "encoder feed-forward inner size", positive)
    dec_pf_dim: int = option(512, "decoder feed-forward inner size", positive)
    enc_dropout: float = option(0.1, "encoder dropout probability", probability)
    dec_dropout: float = option(0.1, "decoder dropout probability", probability)
    max_length: int = option(100, "positions the model can embed (longest sentence, <sos>/<eos> "
                                  "included)", positive)
    tie_embeddings: bool = option(False, "the decoder's output layer uses its embedding matrix "
                                         "(and the encoder's, with --share-vocab)")
    layer_norms: str = option("shared", "shared: one layer_norm per layer, as the article has it; "
                                        "separate: one per sublayer, as the later notebook "
                                        "(self_attn_/enc_attn_/ff_layer_norm)", one_of(LAYER_NORMS))
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
    schedule: str = option("constant", "learning-rate schedule: constant (the tutorial's) or "
                                       "inverse_sqrt", one_of(tuple(SCHEDULES)))
    warmup: int = option(4000, "warmup steps of the inverse_sqrt schedule", positive)
    label_smoothing: float = option(0.0, "label smoothing of the cross-entropy loss", probability)
    weight_decay: float = option(0.0, "Adam's L2 weight decay", not_negative)
    seed: int = option(1234, "seed of the weights, the batch order and dropout")
    select_by: str = option("loss", "validation metric that picks best.npz and drives --patience: "
                                    "loss, or bleu (greedy sacreBLEU of the validation split)",
                          one_of(SELECT_BY))
    patience: Optional[int] = option(None, "stop early after this many epochs without a better "
                                           "validation metric (none: run every epoch)", positive)
    average_last: Optional[int] = option(None, "keep the last N epochs' weights and average them "
                                               "at the end into averaged.npz; the test then scores "
                                               "whichever of best.npz/averaged.npz validates "
                                               "better", positive)
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

    def __post_init__(self):
        self.validate()

    def validate(self):
        """Raise ConfigError naming the first bad value."""
        for f in fields(self):
            value = getattr(self, f.name)
            kind = base_type(f.type)
            if value is None and is_optional(f.type):
                continue
            expected = (int, float) if kind is float else kind   # JSON may write 1.0 as 1
            if not isinstance(value, expected) or (kind is not bool and isinstance(value, bool)):
                raise ConfigError(f"{f.name} must be {kind.__name__}, got {value!r}")
            if kind is float:
                object.__setattr__(self, f.name, float(value))
            limit = f.metadata["limit"]
            problem = limit(f.name, value) if limit is not None else None
            if problem:
                raise ConfigError(problem)
        if self.batch_size is None and self.max_tokens is None:
            raise ConfigError("give batch_size, max_tokens or both")
        for side in ("enc", "dec"):
            heads = getattr(self, f"{side}_heads")
            if self.hid_dim % heads:
                raise ConfigError(f"{side}_heads={heads} does not divide hid_dim={self.hid_dim}")
        if self.max_len is not None and self.max_len > self.max_length:
            raise ConfigError(f"max_len={self.max_len} is longer than the model's "
                              f"max_length={self.max_length}")

    @property
    def train_max_len(self):
        """The length limit for training pairs that the data loader applies."""
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

    def replace(self, **changes):
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def build_parser(prog="python -m tinynmt.train", description=None):
    """One flag per Config field (see cli.parser_from_fields), and --preset."""
    parser = parser_from_fields(Config, prog, description)
    parser.add_argument("--preset", choices=sorted(PRESETS), help="start from a named recipe "
                        "(its values are in tinynmt/config.py's PRESETS); flags given override it "
                        "(default: tutorial)")
    return parser


def model_from_config(config, src_vocab_size, trg_vocab_size, src_pad_idx, trg_pad_idx):
    """The tutorial's Seq2Seq with the config's sizes, initialised from config.seed (on the CPU)."""
    from .nn import build_transformer
    return build_transformer(
        src_vocab_size, trg_vocab_size, src_pad_idx, trg_pad_idx, hid_dim=config.hid_dim,
        enc_layers=config.enc_layers, dec_layers=config.dec_layers, enc_heads=config.enc_heads,
        dec_heads=config.dec_heads, enc_pf_dim=config.enc_pf_dim, dec_pf_dim=config.dec_pf_dim,
        enc_dropout=config.enc_dropout, dec_dropout=config.dec_dropout,
        max_length=config.max_length, seed=config.seed, tie=config.tie_embeddings,
        share_encoder=config.tie_embeddings and config.share_vocab, layer_norms=config.layer_norms)
