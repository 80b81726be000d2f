"""Ensembles: several models decoded as one, by the mean of their probabilities.

    ensemble = Ensemble([model_a, model_b])        # same vocabularies, same device
    beam_search(ensemble, src, beam=5)             # anything that takes a model takes it

At every step each model predicts the next token from its own encoder output and its own
key/value cache (one IncrementalDecoder each); the ensemble's log-probability of a token
is the log of the models' mean probability, as fairseq's EnsembleModel computes it:

    log p(y) = log((1/M) sum_m p_m(y)) = logsumexp_m(log p_m(y)) - log M

(not the mean of the log-probabilities, which is a product of experts). An ensemble of
one model gives that model's numbers exactly. An Ensemble has the interface search decodes
with (incremental.py: `models`, `trg_pad_idx`, `max_positions()`, `start_decoding()`), and
its decoder state, an EnsembleDecoder, has IncrementalDecoder's (`step`, `reorder`,
`keep_sentences`): the search code has one path, whatever the number of models, and never
imports this module.

Legend: M models, N sentences, R rows (N * beams), S source length, V target vocabulary.
"""
import math

from ..backend import get_array_module
from .incremental import IncrementalDecoder, forbid_specials


def mean_of_probabilities(log_probs):
    """Log-probs (M, ...) of M models -> log of their mean probability (...), computed stably
    as logsumexp over the models minus log M. Every input must be finite."""
    xp = get_array_module(log_probs)
    top = log_probs.max(axis=0)                                         # (...)
    return xp.log(xp.exp(log_probs - top).sum(axis=0)) + top - math.log(log_probs.shape[0])


class Ensemble:
    """Models that read the same source vocabulary and write the same target vocabulary."""

    def __init__(self, models):
        self.models = list(models)
        if not self.models:
            raise ValueError("an Ensemble needs at least one model")
        first = self.models[0]
        for i, model in enumerate(self.models[1:], start=2):
            for what, a, b in (
                    ("source vocabulary size", first.encoder.tok_embedding.num_embeddings,
                     model.encoder.tok_embedding.num_embeddings),
                    ("target vocabulary size", first.decoder.fc_out.out_features,
                     model.decoder.fc_out.out_features),
                    ("target <pad> id", first.trg_pad_idx, model.trg_pad_idx),
                    ("device", first.device, model.device)):
                if a != b:
                    raise ValueError(f"ensemble: model {i} has {what} {b}, model 1 has {a}")
        self.trg_pad_idx, self.device = first.trg_pad_idx, first.device

    def __len__(self):
        return len(self.models)

    def max_positions(self):
        """(source, target) positions, <sos>/<eos> included, that every model takes."""
        return (min(m.encoder.max_length for m in self.models), min(m.decoder.max_length for m in self.models))

    def start_decoding(self, src, capacity):
        """The decoder state of a batch src (N, S): an EnsembleDecoder."""
        return EnsembleDecoder(self, src, capacity)


class EnsembleDecoder:
    """IncrementalDecoder's interface over an Ensemble: one IncrementalDecoder per model."""

    def __init__(self, ensemble, src, capacity):
        """src (N, S) padded source ids; each model encodes it and keeps its own caches, with
        room for `capacity` target positions."""
        self.decoders = [IncrementalDecoder(model, src, capacity) for model in ensemble.models]
        self.xp, self.forbidden = self.decoders[0].xp, self.decoders[0].forbidden

    @property
    def t(self):
        """Positions decoded so far."""
        return self.decoders[0].t

    def step(self, tokens):
        """Feed tokens (R,) at position t -> the ensemble's log-probs (R, V) of position t+1
        (<pad>, <sos> forbidden), the first model's last-layer cross-attention (R, H, S)."""
        outputs = [decoder.next_log_probs(tokens) for decoder in self.decoders]
        stacked = self.xp.stack([log_probs for log_probs, _ in outputs])    # (M, R, V)
        log_probs = mean_of_probabilities(stacked)                           # (R, V)
        return forbid_specials(log_probs, self.forbidden), outputs[0][1]

    def reorder(self, rows):
        """Keep rows (R',) of every model's self-attention caches, in that order."""
        for decoder in self.decoders:
            decoder.reorder(rows)

    def keep_sentences(self, sentences):
        """Keep sentences (N',) of every model's source side, in that order."""
        for decoder in self.decoders:
            decoder.keep_sentences(sentences)

