"""The tutorial's Transformer: Encoder, Decoder and Seq2Seq, post-norm, learned positions.

Dropout, as the tutorial has it: on the embeddings, on each sublayer's output before the
residual sum, on the attention weights after softmax and after the ReLU of the feed-forward
block, all with the side's one probability (enc_dropout / dec_dropout). attention_dropout and
activation_dropout set the last two apart (fairseq's --attention-dropout/--activation-dropout).

Layer norms: the article's layers have one `layer_norm` used after every sublayer
(layer_norms="shared", the default); the later notebook gives each sublayer its own
(`self_attn_layer_norm`, `enc_attn_layer_norm`, `ff_layer_norm`: layer_norms="separate"),
so the weights of either version load under their own names.

Positions: the tutorial learns them (`pos_embedding` an Embedding, positions="learned");
positions="sinusoidal" puts Vaswani et al.'s fixed sin/cos table in its place (layers.py:
SinusoidalPositions), as fairseq's Transformer does. fairseq's own table puts the sines in
the first half and the cosines in the second, spaces its frequencies 10000^(-i/(D/2-1)) rather
than 10000^(-2i/D), and starts at position 2 (after its padding index).

The forwards are the tutorial's and know nothing of decoding: tinynmt/decoding/incremental.py
runs the decoder one position at a time by calling these modules' pieces (`embed` from a
position, each layer's attentions through the key/value caches of tinynmt/decoding/cache.py,
its norms, dropout and feed-forward, then `fc_out`).

    model = build_transformer(src_vocab_size, trg_vocab_size, PAD_IDX, PAD_IDX)   # the tutorial's
    model = build_transformer(..., ModelConfig(hid_dim=128, enc_layers=2), seed=1)  # other sizes
    model = build_transformer(..., config, seed=config.seed)   # a training Config is a ModelConfig

Legend: B batch, S source length, T target length, D hidden (hid_dim), H heads, V vocabulary.
Token ids arrive as integer arrays (B, S) / (B, T), normally on the host, where they are
checked against the vocabulary before moving to the model's device.
"""
import dataclasses
import math
from dataclasses import dataclass

from typing import Optional

import numpy as np

from ..backend import device_of, get_array_module, to_device
from ..options import ConfigError, check_choice, check_fields, one_of, option, positive, probability
from .attention import MultiHeadAttentionLayer, PositionwiseFeedforwardLayer
from .init import INITS, initialize_weights
from .layers import Dropout, Embedding, LayerNorm, Linear, SinusoidalPositions, check_ids
from .module import Module, ModuleList


LAYER_NORMS = ("shared", "separate")   # the article's one norm per layer, or the later notebook's
POSITIONS = ("learned", "sinusoidal")  # the tutorial's trained table, or Vaswani et al.'s fixed one


@dataclass
class ModelConfig:
    """The model's sizes and options, the one place they are declared; the defaults are the
    tutorial's. tinynmt.training.config.Config adds the training options to these (the same flags)."""

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
    positions: str = option("learned", "position vectors: learned (the tutorial's pos_embedding, trained "
                                       "with the model) or sinusoidal (Vaswani et al.'s fixed sin/cos "
                                       "table, fairseq's default)", one_of(POSITIONS))
    share_vocab: bool = option(False, "one vocabulary built from both languages' training text "
                                      "(with --tie-embeddings the encoder shares it too)")
    tie_embeddings: bool = option(False, "the decoder's output layer uses its embedding matrix "
                                         "(and the encoder's, with --share-vocab)")
    layer_norms: str = option("shared", "shared: one layer_norm per layer, as the article has it; "
                                        "separate: one per sublayer, as the later notebook "
                                        "(self_attn_/enc_attn_/ff_layer_norm)", one_of(LAYER_NORMS))
    attention_dropout: Optional[float] = option(None, "dropout on the attention weights after softmax "
                                                      "(none: enc_dropout/dec_dropout, as in the "
                                                      "tutorial)", probability)
    activation_dropout: Optional[float] = option(None, "dropout after the ReLU of the feed-forward "
                                                       "block (none: enc_dropout/dec_dropout, as in "
                                                       "the tutorial)", probability)
    init: str = option("tutorial", "weight initialisation: tutorial (xavier_uniform on every matrix) "
                                   "or fairseq (its Transformer's: embeddings N(0, 1/hid_dim), "
                                   "attention xavier_uniform, feed-forward PyTorch's default)",
                       one_of(INITS))

    def __post_init__(self):
        self.validate()

    def validate(self):
        """Raise ConfigError naming the first bad value."""
        check_fields(self)
        for side in ("enc", "dec"):
            heads = getattr(self, f"{side}_heads")
            if self.hid_dim % heads:
                raise ConfigError(f"{side}_heads={heads} does not divide hid_dim={self.hid_dim}")

    def replace(self, **changes):
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def add_layer_norms(layer, layer_norms, names, make_norm):
    """Give `layer` one `layer_norm` used after every sublayer (layer_norms="shared", the
    article's) or one norm per sublayer under `names` (the later notebook's); return the
    attribute names in sublayer order."""
    if check_choice("layer_norms", layer_norms, LAYER_NORMS) == "shared":
        layer.layer_norm = make_norm()
        return ("layer_norm",) * len(names)
    for name in names:
        setattr(layer, name, make_norm())
    return tuple(names)


def sublayer_dropouts(dropout, attention_dropout, activation_dropout):
    """(attention, activation) dropout probabilities: each the layer's `dropout` where None."""
    return (dropout if attention_dropout is None else attention_dropout,
            dropout if activation_dropout is None else activation_dropout)


def position_embedding(positions, max_length, hid_dim):
    """A side's `pos_embedding`: a trained Embedding (the tutorial's) or the fixed sinusoids."""
    if check_choice("positions", positions, POSITIONS) == "sinusoidal":
        return SinusoidalPositions(max_length, hid_dim)
    return Embedding(max_length, hid_dim)


def position_ids(side, length, what):
    """Positions 0 .. length-1 (L,) on the device of `side` (an Encoder or Decoder); a
    ValueError naming its max_length when the sentence is longer."""
    if length > side.max_length:
        raise ValueError(f"{what} of {length} tokens is longer than max_length={side.max_length}")
    return get_array_module(side.tok_embedding.weight.data).arange(length)   # (L,), broadcast over B


def embed(side, tokens, positions):
    """The tutorial's embedding of an Encoder or Decoder `side`: dropout(tok_embedding(tokens)
    * sqrt(D) + pos_embedding(positions)); tokens (B, L), positions (L,) -> (B, L, D)."""
    return side.dropout(side.tok_embedding(tokens) * side.scale + side.pos_embedding(positions))


class EncoderLayer(Module):
    """Self-attention then feed-forward, each added to its input and normalised (post-norm)."""

    def __init__(self, hid_dim, n_heads, pf_dim, dropout, layer_norms="shared", attention_dropout=None,
                 activation_dropout=None):
        super().__init__()
        self.norm_names = add_layer_norms(self, layer_norms, ("self_attn_layer_norm", "ff_layer_norm"),
                                          lambda: LayerNorm(hid_dim))
        attention_p, activation_p = sublayer_dropouts(dropout, attention_dropout, activation_dropout)
        self.self_attention = MultiHeadAttentionLayer(hid_dim, n_heads, attention_p)
        self.positionwise_feedforward = PositionwiseFeedforwardLayer(hid_dim, pf_dim, activation_p)
        self.dropout = Dropout(dropout)

    def forward(self, src, src_mask):
        """src (B, S, D), src_mask (B, 1, 1, S) -> (B, S, D)"""
        self_attn_norm, ff_norm = (getattr(self, name) for name in self.norm_names)
        _src, _ = self.self_attention(src, src, src, src_mask)
        src = self_attn_norm(src + self.dropout(_src))
        src = ff_norm(src + self.dropout(self.positionwise_feedforward(src)))
        return src


class Encoder(Module):
    def __init__(self, input_dim, hid_dim, n_layers, n_heads, pf_dim, dropout, max_length=100,
                 layer_norms="shared", attention_dropout=None, activation_dropout=None,
                 positions="learned"):
        super().__init__()
        self.max_length = max_length
        self.tok_embedding = Embedding(input_dim, hid_dim)
        self.pos_embedding = position_embedding(positions, max_length, hid_dim)
        self.layers = ModuleList(EncoderLayer(hid_dim, n_heads, pf_dim, dropout, layer_norms,
                                              attention_dropout, activation_dropout)
                                 for _ in range(n_layers))
        self.dropout = Dropout(dropout)
        self.scale = math.sqrt(hid_dim)

    def forward(self, src, src_mask):
        """src (B, S) ids, src_mask (B, 1, 1, S) -> (B, S, D)"""
        src = embed(self, src, position_ids(self, src.shape[1], "source"))   # (B, S, D)
        for layer in self.layers:
            src = layer(src, src_mask)
        return src


class DecoderLayer(Module):
    """Masked self-attention, attention over the encoder output, feed-forward (post-norm)."""

    def __init__(self, hid_dim, n_heads, pf_dim, dropout, layer_norms="shared", attention_dropout=None,
                 activation_dropout=None):
        super().__init__()
        self.norm_names = add_layer_norms(
            self, layer_norms, ("self_attn_layer_norm", "enc_attn_layer_norm", "ff_layer_norm"),
            lambda: LayerNorm(hid_dim))
        attention_p, activation_p = sublayer_dropouts(dropout, attention_dropout, activation_dropout)
        self.self_attention = MultiHeadAttentionLayer(hid_dim, n_heads, attention_p)
        self.encoder_attention = MultiHeadAttentionLayer(hid_dim, n_heads, attention_p)
        self.positionwise_feedforward = PositionwiseFeedforwardLayer(hid_dim, pf_dim, activation_p)
        self.dropout = Dropout(dropout)

    def forward(self, trg, enc_src, trg_mask, src_mask):
        """trg (B, T, D), enc_src (B, S, D) -> (B, T, D), attention (B, H, T, S)"""
        self_attn_norm, enc_attn_norm, ff_norm = (getattr(self, name) for name in self.norm_names)
        _trg, _ = self.self_attention(trg, trg, trg, trg_mask)
        trg = self_attn_norm(trg + self.dropout(_trg))
        _trg, attention = self.encoder_attention(trg, enc_src, enc_src, src_mask)
        trg = enc_attn_norm(trg + self.dropout(_trg))
        trg = ff_norm(trg + self.dropout(self.positionwise_feedforward(trg)))
        return trg, attention


class Decoder(Module):
    def __init__(self, output_dim, hid_dim, n_layers, n_heads, pf_dim, dropout, max_length=100,
                 layer_norms="shared", attention_dropout=None, activation_dropout=None,
                 positions="learned"):
        super().__init__()
        self.max_length = max_length
        self.tok_embedding = Embedding(output_dim, hid_dim)
        self.pos_embedding = position_embedding(positions, max_length, hid_dim)
        self.layers = ModuleList(DecoderLayer(hid_dim, n_heads, pf_dim, dropout, layer_norms,
                                              attention_dropout, activation_dropout)
                                 for _ in range(n_layers))
        self.fc_out = Linear(hid_dim, output_dim)
        self.dropout = Dropout(dropout)
        self.scale = math.sqrt(hid_dim)

    def forward(self, trg, enc_src, trg_mask, src_mask, rows=None):
        """trg (B, T) ids -> logits (B, T, V), last layer's attention (B, H, T, S); with rows,
        integer ids into the B * T positions (row-major), the logits of those alone (M, V)."""
        trg = embed(self, trg, position_ids(self, trg.shape[1], "target"))   # (B, T, D)
        for layer in self.layers:
            trg, attention = layer(trg, enc_src, trg_mask, src_mask)
        if rows is not None:
            trg = trg.reshape(-1, trg.shape[-1])[rows]                      # (M, D)
        return self.fc_out(trg), attention


class Seq2Seq(Module):
    """Encoder + decoder with the tutorial's padding and look-ahead masks."""

    def __init__(self, encoder, decoder, src_pad_idx, trg_pad_idx):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.src_pad_idx, self.trg_pad_idx = src_pad_idx, trg_pad_idx

    def make_src_mask(self, src):
        """(B, S) ids -> (B, 1, 1, S): True where attention may look (not padding)."""
        return (src != self.src_pad_idx)[:, None, None, :]

    def make_trg_mask(self, trg):
        """(B, T) ids -> (B, 1, T, T): not padding, and no position sees a later one."""
        xp = get_array_module(trg)
        trg_len = trg.shape[1]
        trg_pad_mask = (trg != self.trg_pad_idx)[:, None, None, :]                # (B, 1, 1, T)
        trg_sub_mask = xp.tril(xp.ones((trg_len, trg_len), dtype=bool))         # (T, T)
        return trg_pad_mask & trg_sub_mask                                        # (B, 1, T, T)

    def to_model_device(self, ids, embedding, what):
        """Check ids on the host against the vocabulary, then move them to the model's device."""
        ids = np.asarray(ids) if isinstance(ids, (list, tuple)) else ids
        if ids.ndim != 2:
            raise ValueError(f"{what} ids must be a (batch, length) array, got shape {ids.shape}")
        if isinstance(ids, np.ndarray):
            check_ids(ids, embedding.num_embeddings, f"{what} vocabulary")
        return to_device(ids, embedding.weight.device)

    def encode(self, src):
        """src (B, S) ids -> enc_src (B, S, D), src_mask (B, 1, 1, S)"""
        src = self.to_model_device(src, self.encoder.tok_embedding, "source")
        src_mask = self.make_src_mask(src)
        return self.encoder(src, src_mask), src_mask

    def forward(self, src, trg, rows=None):
        """src (B, S), trg (B, T) ids -> logits (B, T, V), attention (B, H, T, S); rows: only
        those of the B * T target positions get logits, (M, V) (Decoder.forward)."""
        enc_src, src_mask = self.encode(src)
        trg = self.to_model_device(trg, self.decoder.tok_embedding, "target")
        rows = None if rows is None else to_device(rows, device_of(trg))
        return self.decoder(trg, enc_src, self.make_trg_mask(trg), src_mask, rows)


def tie_embedding_weights(model, share_encoder=False):
    """Make the decoder's output projection use its input embedding matrix, (V, D) both
    (Press & Wolf, 2017); with share_encoder, the encoder's embedding too (one joint vocabulary).

    The tied matrix is one Parameter under several names: gradients from every use add up in
    it, the optimizer sees it once, and state_dict() lists it under each name."""
    dec = model.decoder
    dec.fc_out.weight = dec.tok_embedding.weight                   # (V, D): logits = h @ E.T + b
    if share_encoder:
        enc = model.encoder
        if enc.tok_embedding.num_embeddings != dec.tok_embedding.num_embeddings:
            raise ValueError(f"sharing the encoder's embedding needs one vocabulary; got "
                             f"{enc.tok_embedding.num_embeddings} source and "
                             f"{dec.tok_embedding.num_embeddings} target tokens")
        enc.tok_embedding.weight = dec.tok_embedding.weight
    return model


def build_transformer(src_vocab_size, trg_vocab_size, src_pad_idx, trg_pad_idx, config=None, seed=1234):
    """The tutorial's model with `config`'s sizes (a ModelConfig, or a training Config, which is
    one; None: the tutorial's): build, initialise as config.init says from `seed` (the
    tutorial's: xavier_uniform_ every weight with more than one dim; nn/init.py), then tie the
    embeddings if config.tie_embeddings (see tie_embedding_weights)."""
    c = ModelConfig() if config is None else config
    enc = Encoder(src_vocab_size, c.hid_dim, c.enc_layers, c.enc_heads, c.enc_pf_dim, c.enc_dropout,
                  c.max_length, c.layer_norms, c.attention_dropout, c.activation_dropout, c.positions)
    dec = Decoder(trg_vocab_size, c.hid_dim, c.dec_layers, c.dec_heads, c.dec_pf_dim, c.dec_dropout,
                  c.max_length, c.layer_norms, c.attention_dropout, c.activation_dropout, c.positions)
    model = initialize_weights(Seq2Seq(enc, dec, src_pad_idx, trg_pad_idx), np.random.default_rng(seed), c.init)
    return tie_embedding_weights(model, c.share_vocab) if c.tie_embeddings else model
