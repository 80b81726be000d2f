"""The model's decoder run one target position at a time, with cached keys and values.

Training runs the decoder on whole target sentences; decoding adds one token per step.
Rerunning the decoder on the whole prefix each step (the tutorial's translate_sentence)
costs O(T^2) positions per sentence; here every step computes only the new position, by
calling the model's own `Decoder` with a `DecoderCache` (tinynmt/decoding/cache.py):

- the encoder output is computed once per batch, and each decoder layer's cross-attention
  keys/values (fc_k, fc_v of `encoder_attention`) at the first step;
- each layer's self-attention keys/values are cached: a step appends the new position's K
  and V, and the new query attends to every cached position (all of them are earlier or
  equal, so no look-ahead mask is needed).

There is one model, and the numbers are the ones `model(src, trg)` computes. Callers run
it under `no_grad` with the model in eval mode (see `eval_mode`). An ensemble of models
(ensemble.py) runs one IncrementalDecoder per model behind the same interface.

Beam search keeps `beams` rows per source sentence, sentence-major (row = n * beams + k).
The encoder keys/values stay one per sentence: the beams of a sentence are its extra
query positions in cross-attention, (N, H, beams, Dh) @ (N, H, Dh, S).

Legend: N sentences, R rows (N * beams), S source length, t positions decoded so far,
D hidden, H heads, V target vocabulary.
"""
from contextlib import contextmanager

from ..autograd import log_softmax
from ..backend import get_array_module
from ..data import SOS_IDX
from .cache import DecoderCache


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


class IncrementalDecoder:
    """Decoder state for a batch: the encoder output, its mask and the decoder's caches."""

    def __init__(self, model, src, max_len, beams=1):
        """src (N, S) padded source ids (host or device); room for max_len decoded positions."""
        decoder = model.decoder
        if not 1 <= max_len <= decoder.max_length:
            raise ValueError(f"max_len must be in [1, {decoder.max_length}] (the model's target "
                             f"positions), got {max_len}")
        self.model, self.decoder, self.beams = model, decoder, beams
        self.enc_src, self.src_mask = model.encode(src)             # (N, S, D), (N, 1, 1, S)
        self.xp = get_array_module(self.enc_src.data)
        self.cache = DecoderCache(len(decoder.layers), max_len, beams)
        # never generated: <pad> (its key would be masked out when training) and <sos>
        self.forbidden = self.xp.asarray([model.trg_pad_idx, SOS_IDX])  # (2,), on the device once

    @property
    def n_sentences(self):
        return self.src_mask.shape[0]

    @property
    def t(self):
        """Positions decoded so far."""
        return self.cache.length

    def step(self, tokens):
        """Feed tokens (R,) at position t -> log-probs (R, V) of position t+1, <pad> and <sos>
        forbidden (-inf), cross-attention of the last layer (R, H, S)."""
        log_probs, attention = self.next_log_probs(tokens)
        return forbid_specials(log_probs, self.forbidden), attention

    def next_log_probs(self, tokens):
        """step() with nothing forbidden: the model's own log-probs (R, V), attention (R, H, S)."""
        rows = tokens.shape[0]
        # one position: no look-ahead mask (every cached position is earlier)
        logits, attention = self.decoder(tokens[:, None], self.enc_src, None, self.src_mask,
                                         self.cache)                     # (R, 1, V), (N, H, beams, S)
        log_probs = log_softmax(logits, axis=-1).data[:, 0]             # (R, 1, V) -> (R, V)
        attention = attention.data.transpose(0, 2, 1, 3).reshape(rows, -1, attention.shape[-1])  # (R, H, S)
        return log_probs, attention

    def reorder(self, rows):
        """Keep the self-attention cache of `rows` (R',) in that order (beam backpointers,
        finished sentences dropped): only the t positions written are copied."""
        self.cache.reorder(rows)

    def keep_sentences(self, sentences):
        """Keep the source side (encoder output, its mask, cross keys/values) of `sentences`
        (N',), in that order."""
        self.enc_src = self.enc_src[sentences]                                  # (N', S, D)
        self.src_mask = self.src_mask[sentences]                                # (N', 1, 1, S)
        self.cache.keep_sentences(sentences)
