"""Key/value caches: what attention keeps between decoding steps (decoding only; None in training).

Decoding feeds the decoder one new target position per step. Rerunning it on the whole
prefix (the tutorial's translate_sentence) costs O(T^2) positions per sentence; with a
cache each step projects only the new position. The model's own layers take the cache as
an argument (`MultiHeadAttentionLayer`, `DecoderLayer`, `Decoder`, with `cache=None` they
are the tutorial's), so there is one model and the numbers are those `model(src, trg)`
computes. There are two kinds of KVCache, one of each per decoder layer:

- self-attention (`KVCache.self_attention(max_len)`): a step appends the new positions' K
  and V to buffers with room for max_len positions, and the new queries attend to every
  position so far. All of them are earlier or equal, so a one-position step needs no
  look-ahead mask.
- cross-attention (`KVCache.cross_attention(beams)`): K and V of the encoder output depend
  on the source only; the first step computes them (fc_k, fc_v of `encoder_attention`) and
  every later step reuses them. Beam search keeps `beams` decoder rows per sentence,
  sentence-major (row = n * beams + k); the keys/values stay one per sentence, and the
  layer makes a sentence's beams its extra query positions: (N, H, beams, Dh) @ (N, H, Dh, S).

The cache holds raw arrays: no gradient flows through it (decoding runs under `no_grad`).

Legend: N sentences, R rows (N * beams), S source length, t positions cached so far,
L max_len, H heads, Dh head dim.
"""
from ..autograd import Tensor
from ..backend import get_array_module


class KVCache:
    """One attention layer's keys and values, kept from earlier decoding steps."""

    def __init__(self, max_len=None, beams=1):
        """Use the constructors below: max_len for self-attention, None for cross-attention."""
        self.max_len, self.beams = max_len, beams
        self.keys = self.values = None   # self: (R, H, L, Dh) buffers; cross: (N, H, S, Dh)
        self.length = 0                  # positions kept (self-attention: t)

    @classmethod
    def self_attention(cls, max_len):
        """Room for max_len target positions, appended as they are decoded."""
        return cls(max_len=max_len)

    @classmethod
    def cross_attention(cls, beams=1):
        """The encoder output's keys/values, from the first call on; `beams` query rows per key row."""
        return cls(beams=beams)

    @property
    def complete(self):
        """A cross-attention cache after its first call: the layer reuses it, projects nothing."""
        return self.max_len is None and self.keys is not None

    def update(self, K, V):
        """Keep this call's K, V (B, H, Q, Dh) -> every one kept so far, as Tensors (B, H, t, Dh)."""
        if self.max_len is None:                               # cross-attention: all there is
            self.keys, self.values, self.length = K.data, V.data, K.shape[2]
            return K, V
        start, end = self.length, self.length + K.shape[2]
        if end > self.max_len:
            raise ValueError(f"the cache has room for {self.max_len} positions, not {end}")
        if self.keys is None:
            xp = get_array_module(K.data)
            shape = K.shape[:2] + (self.max_len,) + K.shape[3:]  # (R, H, L, Dh)
            self.keys = xp.empty(shape, dtype=K.dtype)
            self.values = xp.empty(shape, dtype=V.dtype)
        self.keys[:, :, start:end] = K.data
        self.values[:, :, start:end] = V.data
        self.length = end
        return Tensor(self.keys[:, :, :end]), Tensor(self.values[:, :, :end])  # (R, H, t, Dh)

    def keys_values(self):
        """The kept keys/values as Tensors (B, H, t, Dh)."""
        return Tensor(self.keys[:, :, :self.length]), Tensor(self.values[:, :, :self.length])

    def select(self, rows):
        """Keep `rows` (R',) of the cache, in that order: beam backpointers, or finished
        sentences dropped (cross-attention: rows are sentences). Only kept positions are copied."""
        if self.keys is None:
            return
        if self.max_len is None:
            self.keys, self.values = self.keys[rows], self.values[rows]   # (N', H, S, Dh)
            return
        xp, t = get_array_module(self.keys), self.length
        for name in ("keys", "values"):
            old = getattr(self, name)
            new = xp.empty((len(rows),) + old.shape[1:], dtype=old.dtype)  # (R', H, L, Dh)
            new[:, :, :t] = old[rows, :, :t]
            setattr(self, name, new)


class DecoderCache:
    """A (self-attention, cross-attention) KVCache pair for each layer of a Decoder."""

    def __init__(self, n_layers, max_len, beams=1):
        self.layers = [(KVCache.self_attention(max_len), KVCache.cross_attention(beams))
                       for _ in range(n_layers)]

    @property
    def length(self):
        """Target positions cached so far: the next call's tokens start at this position."""
        return self.layers[0][0].length

    def reorder(self, rows):
        """Keep the decoder rows `rows` (R',) of the self-attention caches, in that order."""
        for self_cache, _ in self.layers:
            self_cache.select(rows)

    def keep_sentences(self, sentences):
        """Keep the sentences `sentences` (N',) of the cross-attention caches, in that order."""
        for _, cross_cache in self.layers:
            cross_cache.select(sentences)
