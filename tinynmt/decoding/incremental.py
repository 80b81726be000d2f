"""The model's decoder run one target position at a time, with cached keys and values.

Training runs the decoder on whole target sentences; decoding adds one token per step.
Rerunning the decoder on the whole prefix each step (the tutorial's translate_sentence)
costs O(T^2) positions per sentence; here every step computes only the new position:

- the encoder output and each decoder layer's cross-attention keys/values (fc_k, fc_v of
  `encoder_attention`) are computed once per batch;
- each layer's self-attention keys/values are cached: a step writes the new position's K
  and V into the cache, and the new query attends to every cached position (all of them
  are earlier or equal, so no look-ahead mask is needed).

It calls the model's own layers (fc_q/fc_k/fc_v/fc_o through `split_heads`/`attend`,
`layer_norm`, `positionwise_feedforward`, the embeddings, `fc_out`), so there is one model
and the numbers are the ones `model(src, trg)` computes. Callers run it under `no_grad`
with the model in eval mode (see `eval_mode`).

Beam search keeps `beams` rows per source sentence, sentence-major (row = n * beams + k).
The encoder keys/values stay one per sentence: the beams of a sentence are its extra
query positions in cross-attention, (N, H, beams, Dh) @ (N, H, Dh, S).

Legend: N sentences, R rows (N * beams), S source length, t positions decoded so far,
L max output length, D hidden, H heads, Dh head dim, V target vocabulary.
"""
from contextlib import contextmanager

from ..autograd import Tensor, log_softmax
from ..backend import get_array_module
from ..data import SOS_IDX


@contextmanager
def eval_mode(model):
    """Put the model in eval mode (no dropout) for the block, then restore its mode."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


class IncrementalDecoder:
    """Decoder state for a batch: cross-attention keys/values and a self-attention cache."""

    def __init__(self, model, src, max_len, beams=1):
        """src (N, S) padded source ids (host or device); room for max_len decoded positions."""
        decoder = model.decoder
        if not 1 <= max_len <= decoder.max_length:
            raise ValueError(f"max_len must be in [1, {decoder.max_length}] (the model's target "
                             f"positions), got {max_len}")
        self.model, self.decoder, self.beams = model, decoder, beams
        enc_src, self.src_mask = model.encode(src)                  # (N, S, D), (N, 1, 1, S)
        self.xp = get_array_module(enc_src.data)
        self.cross = []
        for layer in decoder.layers:
            att = layer.encoder_attention
            self.cross.append((att.split_heads(att.fc_k(enc_src)),  # (N, H, S, Dh)
                               att.split_heads(att.fc_v(enc_src))))  # (N, H, S, Dh)
        att = decoder.layers[0].self_attention
        rows = src.shape[0] * beams
        shape = (rows, att.n_heads, max_len, att.head_dim)         # (R, H, L, Dh)
        dtype = enc_src.dtype
        self.keys = [self.xp.empty(shape, dtype=dtype) for _ in decoder.layers]
        self.values = [self.xp.empty(shape, dtype=dtype) for _ in decoder.layers]
        # never generated: <pad> (its key would be masked out when training) and <sos>
        self.forbidden = self.xp.asarray([model.trg_pad_idx, SOS_IDX])  # (2,), on the device once
        self.positions = self.xp.arange(max_len)                        # (L,): step t reads [t:t+1]
        self.t = 0

    @property
    def n_sentences(self):
        return self.src_mask.shape[0]

    def step(self, tokens):
        """Feed tokens (R,) at position t -> log-probs (R, V) of position t+1, cross-attention
        of the last layer (R, H, S)."""
        xp, dec, t = self.xp, self.decoder, self.t
        rows = tokens.shape[0]
        n, beams = self.n_sentences, self.beams
        positions = self.positions[t:t + 1]                            # (1,), a device view
        x = dec.tok_embedding(tokens[:, None]) * dec.scale + dec.pos_embedding(positions)  # (R, 1, D)
        x = dec.dropout(x)
        attention = None
        for i, layer in enumerate(dec.layers):
            sa = layer.self_attention
            self.keys[i][:, :, t] = sa.split_heads(sa.fc_k(x)).data[:, :, 0]    # (R, H, Dh)
            self.values[i][:, :, t] = sa.split_heads(sa.fc_v(x)).data[:, :, 0]  # (R, H, Dh)
            K = Tensor(self.keys[i][:, :, :t + 1])                              # (R, H, t+1, Dh)
            V = Tensor(self.values[i][:, :, :t + 1])                            # (R, H, t+1, Dh)
            _x, _ = sa.attend(sa.split_heads(sa.fc_q(x)), K, V)                 # (R, 1, D)
            x = layer.layer_norm(x + layer.dropout(_x))
            ea = layer.encoder_attention
            q = ea.split_heads(ea.fc_q(x.reshape(n, beams, -1)))                # (N, H, beams, Dh)
            _x, attention = ea.attend(q, *self.cross[i], self.src_mask)         # (N, beams, D), (N, H, beams, S)
            x = layer.layer_norm(x + layer.dropout(_x.reshape(rows, 1, -1)))    # (R, 1, D)
            x = layer.layer_norm(x + layer.dropout(layer.positionwise_feedforward(x)))
        self.t += 1
        log_probs = log_softmax(dec.fc_out(x), axis=-1).data[:, 0]             # (R, 1, V) -> (R, V)
        log_probs[:, self.forbidden] = -xp.inf
        attention = attention.data.transpose(0, 2, 1, 3).reshape(rows, -1, attention.shape[-1])  # (R, H, S)
        return log_probs, attention

    def reorder(self, rows):
        """Keep the self-attention cache of `rows` (R',) in that order (beam backpointers,
        finished sentences dropped): only the t positions written are copied."""
        t = self.t
        for cache in (self.keys, self.values):
            for i, old in enumerate(cache):
                new = self.xp.empty((len(rows),) + old.shape[1:], dtype=old.dtype)  # (R', H, L, Dh)
                new[:, :, :t] = old[rows, :, :t]
                cache[i] = new

    def keep_sentences(self, sentences):
        """Keep the source side (cross keys/values, mask) of `sentences` (N',), in that order."""
        self.src_mask = self.src_mask[sentences]                                 # (N', 1, 1, S)
        self.cross = [(Tensor(K.data[sentences]), Tensor(V.data[sentences])) for K, V in self.cross]
