"""Key/value caches: what attention keeps between decoding steps (decoding only).

Decoding feeds the decoder one new target position per step. Rerunning it on the whole
prefix (the tutorial's translate_sentence) costs O(T^2) positions per sentence; with a
cache each step projects only the new position. The model's forwards know nothing of
this: each cache's `attend` runs a layer's own pieces (`fc_q`, `fc_k`, `fc_v`, `fc_o`,
`split_heads`, `attend`, `merge_heads` of tinynmt/nn/attention.py:MultiHeadAttentionLayer)
on the kept keys/values, so the numbers are those `model(src, trg)` computes. Two small
types, one of each per decoder layer (decoding/incremental.py holds them):

- SelfAttentionCache(capacity): a step appends the new positions' K and V to buffers with
  room for `capacity` positions, and the new queries attend to every position so far. All
  of them are earlier or equal, so a one-position step needs no look-ahead mask.
  `select(rows)` keeps some rows in a new order (beam backpointers, finished sentences).
- CrossAttentionCache(attention, enc_src): K and V of the encoder output depend on the
  source only; they are computed once (the layer's fc_k, fc_v), one row per sentence. Beam
  search keeps `beams` decoder rows per sentence, sentence-major (row = n * beams + k): the
  beams of a sentence are its extra query positions, (N, H, beams, Dh) @ (N, H, Dh, S).
  `select(sentences)` keeps some sentences.

The caches hold raw arrays: no gradient flows through them (decoding runs under `no_grad`).

Legend: N sentences, R decoder rows (N * beams), S source length, L new positions,
t positions kept so far, C capacity, D hidden, H heads, Dh head dim.
"""
from ..autograd import Tensor
from ..backend import get_array_module


class SelfAttentionCache:
    """One self-attention layer's keys and values of the target positions decoded so far."""

    def __init__(self, capacity):
        """Room for `capacity` target positions, appended as they are decoded."""
        self.capacity = capacity
        self.keys = self.values = None   # (R, H, C, Dh) buffers, made by the first append
        self.length = 0                  # positions kept: t

    def append(self, K, V):
        """Keep K, V (R, H, L, Dh) of the next L positions -> every position kept so far, as
        Tensors (R, H, t, Dh)."""
        start, end = self.length, self.length + K.shape[2]
        if end > self.capacity:
            raise ValueError(f"the cache has room for {self.capacity} positions, not {end}")
        if self.keys is None:
            xp = get_array_module(K.data)
            shape = K.shape[:2] + (self.capacity,) + K.shape[3:]  # (R, H, C, Dh)
            self.keys = xp.empty(shape, dtype=K.dtype)
            self.values = xp.empty(shape, dtype=V.dtype)
        self.keys[:, :, start:end] = K.data
        self.values[:, :, start:end] = V.data
        self.length = end
        return Tensor(self.keys[:, :, :end]), Tensor(self.values[:, :, :end])  # (R, H, t, Dh)

    def select(self, rows):
        """Keep `rows` (R',) in that order: beam backpointers, or finished sentences dropped.
        Only the t positions written are copied."""
        if self.keys is None:
            return
        xp, t = get_array_module(self.keys), self.length
        for name in ("keys", "values"):
            old = getattr(self, name)
            new = xp.empty((len(rows),) + old.shape[1:], dtype=old.dtype)  # (R', H, C, Dh)
            new[:, :, :t] = old[rows, :, :t]
            setattr(self, name, new)

    def attend(self, attention, x, mask=None):
        """Self-attention by `attention` (this layer's MultiHeadAttentionLayer) of x (R, L, D),
        the L positions after the kept ones, over every position so far -> output (R, L, D),
        weights (R, H, L, t). One position needs no mask (all it sees is earlier); several
        need their look-ahead mask, broadcastable to (R, H, L, t)."""
        Q = attention.split_heads(attention.fc_q(x))                    # (R, H, L, Dh)
        K, V = self.append(attention.split_heads(attention.fc_k(x)),    # (R, H, t, Dh) each
                           attention.split_heads(attention.fc_v(x)))
        out, weights = attention.attend(Q, K, V, mask)                  # (R, H, L, Dh), (R, H, L, t)
        return attention.fc_o(attention.merge_heads(out)), weights      # (R, L, D)


class CrossAttentionCache:
    """One cross-attention layer's keys and values of the encoder output: computed once, one
    row per sentence."""

    def __init__(self, attention, enc_src):
        """attention: this layer's encoder_attention; enc_src (N, S, D), the encoder output."""
        self.keys = attention.split_heads(attention.fc_k(enc_src)).data    # (N, H, S, Dh)
        self.values = attention.split_heads(attention.fc_v(enc_src)).data  # (N, H, S, Dh)

    def select(self, sentences):
        """Keep `sentences` (N',) in that order (finished ones dropped)."""
        self.keys, self.values = self.keys[sentences], self.values[sentences]  # (N', H, S, Dh)

    def attend(self, attention, x, src_mask):
        """Attention by `attention` (the encoder_attention these keys/values came from) of x
        (R, L, D), rows sentence-major (R = N * beams), over its sentence's source positions;
        src_mask (N, 1, 1, S) -> output (R, L, D), weights (N, H, beams * L, S)."""
        n_sentences, hid_dim = self.keys.shape[0], x.shape[2]
        query = x.reshape(n_sentences, -1, hid_dim)                     # (N * beams, L, D) -> (N, beams * L, D)
        Q = attention.split_heads(attention.fc_q(query))                # (N, H, beams * L, Dh)
        out, weights = attention.attend(Q, Tensor(self.keys), Tensor(self.values), src_mask)
        out = attention.fc_o(attention.merge_heads(out))                # (N, H, beams * L, Dh) -> (N, beams * L, D)
        return out.reshape(x.shape), weights                            # (R, L, D), (N, H, beams * L, S)
