"""The model's decoder run one target position at a time, with cached keys and values.

Training runs the decoder on whole target sentences; decoding adds one token per step.
Rerunning the decoder on the whole prefix each step (the tutorial's translate_sentence)
costs O(T^2) positions per sentence; here every step computes only the new position. The
model's forwards are the tutorial's and take no cache: `IncrementalDecoder` calls the
decoder's pieces itself, in DecoderLayer.forward's order, with the caches of cache.py:

- the encoder output is computed once per batch, and from it each layer's cross-attention
  keys/values (fc_k, fc_v of `encoder_attention`: a CrossAttentionCache);
- a step embeds the new token at position t (`embed` of tinynmt/nn/transformer.py), and in
  each layer appends its self-attention keys/values to a SelfAttentionCache, the new query
  attending to every cached position (all earlier or equal: no look-ahead mask), then the
  cross-attention, the layer's own norms (`norm_names`), dropouts and feed-forward;
  `fc_out` gives the logits.

The numbers are the ones `model(src, trg)` computes. Callers run it under `no_grad` with
the model in eval mode (see `eval_mode`).

Beam search keeps `beams` rows per source sentence, sentence-major (row = n * beams + k).
The encoder keys/values stay one per sentence: the beams of a sentence are its extra
query positions in cross-attention, (N, H, beams, Dh) @ (N, H, Dh, S).

What search decodes with is an interface, not a class: `models`, `trg_pad_idx`,
`max_positions()` and `start_decoding(src, capacity)`, which returns a decoder state with
`xp`, `t`, `step`, `reorder` and `keep_sentences`. `SingleModel` gives it for one Seq2Seq
(an IncrementalDecoder per batch); an Ensemble (ensemble.py) gives it for several models.

Legend: N sentences, R rows (N * beams), S source length, t positions decoded so far,
D hidden, H heads, V target vocabulary.
"""
from contextlib import contextmanager

from ..autograd import log_softmax
from ..backend import get_array_module
from ..data import SOS_IDX
from ..nn.module import Module
from ..nn.transformer import embed
from .cache import CrossAttentionCache, SelfAttentionCache


@contextmanager
def eval_mode(*models):
    """Put the models in eval mode (no dropout) for the block, then restore each one's mode."""
    was_training = [model.training for model in models]
    for model in models:
        model.eval()
    try:
        yield models[0]
    finally:
        for model, mode in zip(models, was_training):
            model.train(mode)


def forbid_specials(log_probs, forbidden):
    """Make the ids `forbidden` (<pad>, <sos>) impossible: -inf in log_probs (R, V), in place."""
    log_probs[:, forbidden] = -get_array_module(log_probs).inf
    return log_probs


def decoder_layer_step(layer, x, self_cache, cross_cache, src_mask):
    """DecoderLayer.forward for x (R, 1, D), the position after the cached ones, with this
    layer's caches -> (R, 1, D), cross-attention weights (N, H, beams, S)."""
    self_attn_norm, enc_attn_norm, ff_norm = (getattr(layer, name) for name in layer.norm_names)
    _x, _ = self_cache.attend(layer.self_attention, x)
    x = self_attn_norm(x + layer.dropout(_x))
    _x, attention = cross_cache.attend(layer.encoder_attention, x, src_mask)
    x = enc_attn_norm(x + layer.dropout(_x))
    x = ff_norm(x + layer.dropout(layer.positionwise_feedforward(x)))
    return x, attention


class IncrementalDecoder:
    """Decoder state for a batch: the source mask and each decoder layer's two caches."""

    def __init__(self, model, src, capacity):
        """src (N, S) padded source ids (host or device); room for `capacity` target positions
        (tokens fed, <sos> included). Any number of rows per sentence may be fed (beams)."""
        decoder = model.decoder
        if not 1 <= capacity <= decoder.max_length:
            raise ValueError(f"the decoder's room must be in [1, {decoder.max_length}] (the model's "
                             f"target positions), got {capacity}")
        self.decoder, self.capacity = decoder, capacity
        enc_src, self.src_mask = model.encode(src)                       # (N, S, D), (N, 1, 1, S)
        self.xp = get_array_module(enc_src.data)
        self.self_caches = [SelfAttentionCache(capacity) for _ in decoder.layers]
        self.cross_caches = [CrossAttentionCache(layer.encoder_attention, enc_src) for layer in decoder.layers]
        # never generated: <pad> (its key would be masked out when training) and <sos>
        self.forbidden = self.xp.asarray([model.trg_pad_idx, SOS_IDX])  # (2,), on the device once

    @property
    def t(self):
        """Positions decoded so far."""
        return self.self_caches[0].length

    def step(self, tokens):
        """Feed tokens (R,) at position t -> log-probs (R, V) of position t+1, <pad> and <sos>
        forbidden (-inf), cross-attention of the last layer (R, H, S)."""
        log_probs, attention = self.next_log_probs(tokens)
        return forbid_specials(log_probs, self.forbidden), attention

    def next_log_probs(self, tokens):
        """step() with nothing forbidden: the model's own log-probs (R, V), attention (R, H, S)."""
        logits, attention = self.next_logits(tokens)                     # (R, 1, V), (N, H, beams, S)
        log_probs = log_softmax(logits, axis=-1).data[:, 0]             # (R, 1, V) -> (R, V)
        attention = attention.data.transpose(0, 2, 1, 3).reshape(tokens.shape[0], -1, attention.shape[-1])  # (R, H, S)
        return log_probs, attention

    def next_logits(self, tokens):
        """Feed tokens (R,) at position t -> logits (R, 1, V) of the next token, the last layer's
        cross-attention weights (N, H, beams, S): Decoder.forward for one position."""
        t = self.t
        if t >= self.capacity:
            raise ValueError(f"the decoder has room for {self.capacity} positions, all used")
        x = embed(self.decoder, tokens[:, None], self.xp.arange(t, t + 1))  # (R, 1) -> (R, 1, D)
        for layer, self_cache, cross_cache in zip(self.decoder.layers, self.self_caches, self.cross_caches):
            x, attention = decoder_layer_step(layer, x, self_cache, cross_cache, self.src_mask)
        return self.decoder.fc_out(x), attention                        # (R, 1, V)

    def reorder(self, rows):
        """Keep the self-attention caches of `rows` (R',) in that order (beam backpointers,
        finished sentences dropped): only the t positions written are copied."""
        for cache in self.self_caches:
            cache.select(rows)

    def keep_sentences(self, sentences):
        """Keep the source side (its mask, the cross-attention keys/values) of `sentences`
        (N',), in that order."""
        self.src_mask = self.src_mask[sentences]                                # (N', 1, 1, S)
        for cache in self.cross_caches:
            cache.select(sentences)


class SingleModel:
    """One Seq2Seq behind the interface search decodes with (an Ensemble has the same)."""

    def __init__(self, model):
        self.model, self.models, self.trg_pad_idx = model, [model], model.trg_pad_idx

    def max_positions(self):
        """(source, target) positions, <sos>/<eos> included, that the model takes."""
        return self.model.encoder.max_length, self.model.decoder.max_length

    def start_decoding(self, src, capacity):
        """The decoder state of a batch src (N, S): an IncrementalDecoder."""
        return IncrementalDecoder(self.model, src, capacity)


def decodable(model):
    """A Seq2Seq (any Module) as a SingleModel; anything else (an Ensemble) as it is."""
    return SingleModel(model) if isinstance(model, Module) else model


def members(model):
    """The models of an Ensemble, or [model] for one model."""
    return decodable(model).models


def max_positions(model):
    """(source, target) positions, <sos>/<eos> included, that the model (every model of an
    Ensemble) takes."""
    return decodable(model).max_positions()


def start_decoding(model, src, capacity):
    """The decoder state that search steps, for a model or an Ensemble (same interface)."""
    return decodable(model).start_decoding(src, capacity)
