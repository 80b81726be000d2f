"""Batched greedy and beam search on the incremental decoder.

    hyps = greedy_search(model, src, max_steps=50)           # src (N, S) padded ids
    hyps = beam_search(model, src, beam=5, max_steps=50, lenpen=1.0)
    hyps.tokens[i]    # ids of sentence i, without <sos>/<eos>
    hyps.scores[i]    # its score (below); hyps.finished[i]: it ended with <eos>
    hyps = beam_search(model, src, beam=5, nbest=3)  # row i * 3 + j: sentence i's j-th best

`model` is a Seq2Seq, or anything with the interface of incremental.py's SingleModel (an
Ensemble, ensemble.py): the search steps one decoder state either way.

Score of a hypothesis (fairseq's length penalty): the sum of the log-probabilities of its
tokens, the final <eos> included, divided by length ** lenpen, where length counts those
tokens (<eos> included). lenpen 0 is the plain log-probability (favours short outputs),
1 (the default, as in fairseq) the mean per token; above 1 favours longer outputs.

Both searches stop a sentence at <eos> or after max_steps tokens (the tutorial's loop:
max_len predictions, <eos> included); a hypothesis cut at max_steps has no <eos>
(finished=False) and is scored over its max_steps tokens. <pad> and <sos> are never
generated. A step runs on every unfinished sentence at once; sentences that finish
leave the batch, so the steps get cheaper as they go.

Beam search (fairseq's rules): each step takes the best 2 * beam continuations of a
sentence's beams by total log-probability; those ending in <eos> among the best `beam`
are finished (scored as above), the best `beam` not ending in <eos> go on. A sentence is
done once `beam` hypotheses have finished, or at max_steps, when its live beams finish as
they are. The best finished hypothesis by score wins; with nbest, the nbest best finished
ones by score, best first. With beam 1 this is greedy search.

Legend: N sentences (n of them still decoding), K beams, L max_steps, V target vocabulary.
"""
from dataclasses import dataclass
from typing import List

import numpy as np

from ..autograd import no_grad
from ..backend import get_array_module, to_numpy
from ..data import EOS_IDX, SOS_IDX
from ..fast.cpu import top_k_blocked
from .incremental import eval_mode, max_positions, members, start_decoding


@dataclass
class Hypotheses:
    """The best output of each sentence: ids (no <sos>/<eos>), score, whether it reached <eos>.

    With nbest > 1 there are nbest rows per sentence, sentence-major, best first; a row beam
    search could not fill (fewer real hypotheses than nbest) has no ids and score -inf."""

    tokens: List[List[int]]
    scores: np.ndarray      # (N,) float32, length-normalised log-probability
    finished: np.ndarray    # (N,) bool: ended with <eos> (else cut at max_steps)

    def __len__(self):
        return len(self.tokens)


def length_penalty(length, lenpen):
    """length ** lenpen in float32 (never float64: it divides float32 scores), for a number
    of tokens or a host array of them."""
    return (np.asarray(length, dtype=np.float64) ** lenpen).astype(np.float32)[()]


def _unpack(out, total_log_prob, lenpen):
    """Host-side results from padded outputs (N, L) with <eos> kept, and summed log-probs (N,)."""
    out = to_numpy(out)                                                # (N, L)
    is_eos = out == EOS_IDX                                            # (N, L)
    finished = is_eos.any(axis=1)                                      # (N,)
    lengths = np.where(finished, is_eos.argmax(axis=1) + 1, out.shape[1])  # (N,) tokens, <eos> included
    scores = to_numpy(total_log_prob) / length_penalty(lengths, lenpen)  # (N,)
    real = np.isfinite(scores)                                         # (N,) False: an unfilled n-best row
    tokens = [row[:n - f].tolist() if r else [] for row, n, f, r in zip(out, lengths, finished, real)]
    return Hypotheses(tokens, scores, finished)


@no_grad()
def greedy_search(model, src, max_steps=50, lenpen=1.0):
    """Pick the most probable token at each step, for every sentence of src (N, S) at once."""
    check_max_steps(model, max_steps)
    src = np.asarray(src) if isinstance(src, (list, tuple)) else src
    with eval_mode(*members(model)):
        state = start_decoding(model, src, max_steps)
        xp = state.xp
        n = src.shape[0]
        out = xp.full((n, max_steps), model.trg_pad_idx, dtype=xp.int64)  # (N, L)
        total = xp.zeros(n, dtype=xp.float32)                            # (N,)
        alive = xp.arange(n)                                             # (n,) sentence ids
        tokens = xp.full(n, SOS_IDX, dtype=xp.int64)                     # (n,)
        for t in range(max_steps):
            log_probs, _ = state.step(tokens)                            # (n, V)
            tokens = log_probs.argmax(axis=1)                            # (n,)
            out[alive, t] = tokens
            total[alive] += xp.take_along_axis(log_probs, tokens[:, None], axis=1)[:, 0]
            done = tokens == EOS_IDX                                     # (n,)
            n_done = int(done.sum())                                     # the step's one host sync
            if n_done == len(alive):
                break
            if n_done:
                keep = xp.flatnonzero(~done)                             # (n',)
                state.keep_sentences(keep)
                state.reorder(keep)
                alive, tokens = alive[keep], tokens[keep]
    return _unpack(out, total, lenpen)


def _top_k(scores, k):
    """Indices of the k largest entries of each row of scores (n, M), best first -> (n, k)."""
    return top_k_blocked(get_array_module(scores), scores, k, _top_k_plain)  # fast/cpu.py: by blocks


def _top_k_plain(scores, k):
    """_top_k by argpartition over every score."""
    xp = get_array_module(scores)
    m = scores.shape[1]
    part = xp.argpartition(scores, m - k, axis=1)[:, m - k:]             # (n, k) unordered
    order = xp.argsort(-xp.take_along_axis(scores, part, axis=1), axis=1)  # (n, k)
    return xp.take_along_axis(part, order, axis=1)


class _Finished:
    """The best K finished hypotheses of every sentence so far, and how many have finished."""

    def __init__(self, xp, n, k, max_steps, pad):
        self.xp, self.k = xp, k
        self.tokens = xp.full((n, k, max_steps), pad, dtype=xp.int64)   # (N, K, L), <eos> kept
        self.scores = xp.full((n, k), -xp.inf, dtype=xp.float32)         # (N, K)
        self.total = xp.full((n, k), -xp.inf, dtype=xp.float32)          # (N, K) summed log-probs
        self.count = xp.zeros(n, dtype=xp.int64)                          # (N,)

    def add(self, alive, tokens, total, length, lenpen, valid):
        """Offer hypotheses tokens (n, M, L), total log-probs (n, M) of `length` tokens for
        sentences alive (n,); only `valid` (n, M) ones count."""
        xp = self.xp
        scores = xp.where(valid, total / length_penalty(length, lenpen), -xp.inf).astype(xp.float32)
        pool_scores = xp.concatenate([self.scores[alive], scores], axis=1)       # (n, K + M)
        pool_tokens = xp.concatenate([self.tokens[alive], tokens], axis=1)       # (n, K + M, L)
        pool_total = xp.concatenate([self.total[alive], total], axis=1)          # (n, K + M)
        best = _top_k(pool_scores, self.k)                                       # (n, K)
        self.scores[alive] = xp.take_along_axis(pool_scores, best, axis=1)
        self.total[alive] = xp.take_along_axis(pool_total, best, axis=1)
        self.tokens[alive] = xp.take_along_axis(pool_tokens, best[:, :, None], axis=1)
        self.count[alive] += valid.sum(axis=1)


def check_max_steps(model, max_steps):
    """A ValueError unless 1 <= max_steps <= the model's target positions."""
    positions = max_positions(model)[1]
    if not 1 <= max_steps <= positions:
        raise ValueError(f"max_steps must be in [1, {positions}] (the model's target positions), "
                         f"got {max_steps}")


def check_nbest(beam, nbest):
    """A ValueError unless 1 <= nbest <= beam."""
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    if not 1 <= nbest <= beam:
        raise ValueError(f"nbest must be in [1, beam={beam}], got {nbest}")


@no_grad()
def beam_search(model, src, beam=5, max_steps=50, lenpen=1.0, nbest=1):
    """Keep the `beam` best partial translations of every sentence of src (N, S) at once;
    return the nbest best finished ones of each (N * nbest rows)."""
    check_nbest(beam, nbest)
    check_max_steps(model, max_steps)
    src = np.asarray(src) if isinstance(src, (list, tuple)) else src
    K = beam
    with eval_mode(*members(model)):
        state = start_decoding(model, src, max_steps)           # fed n * K rows, K per sentence
        xp = state.xp
        n = src.shape[0]
        pad = model.trg_pad_idx
        finished = _Finished(xp, n, K, max_steps, pad)
        scores = xp.full((n, K), -xp.inf, dtype=xp.float32)     # (n, K) summed log-probs of live beams
        scores[:, 0] = 0                                        # all beams start equal: use one
        history = xp.full((n, K, max_steps), pad, dtype=xp.int64)  # (n, K, L) tokens of live beams
        alive = xp.arange(n)                                    # (n,) sentence ids
        tokens = xp.full(n * K, SOS_IDX, dtype=xp.int64)        # (n * K,)
        rank = xp.arange(2 * K)                                 # (2K,)
        for t in range(max_steps):
            log_probs, _ = state.step(tokens)                   # (n * K, V)
            n, V = len(alive), log_probs.shape[1]
            cand = (scores[:, :, None] + log_probs.reshape(n, K, V)).reshape(n, K * V)  # (n, K*V)
            top = _top_k(cand, 2 * K)                           # (n, 2K)
            top_scores = xp.take_along_axis(cand, top, axis=1)  # (n, 2K)
            from_beam, token = top // V, top % V                # (n, 2K)
            prefixes = xp.take_along_axis(history, from_beam[:, :, None], axis=1)  # (n, 2K, L)
            prefixes[:, :, t] = token
            ends = (token == EOS_IDX) & xp.isfinite(top_scores)  # (n, 2K)
            finished.add(alive, prefixes[:, :K], top_scores[:, :K], t + 1, lenpen, ends[:, :K])
            # the next beams: the best K candidates that do not end (there are >= K of them)
            chosen = xp.argsort(ends * (2 * K) + rank, axis=1)[:, :K]  # (n, K)
            scores = xp.take_along_axis(top_scores, chosen, axis=1)    # (n, K)
            tokens = xp.take_along_axis(token, chosen, axis=1)         # (n, K)
            from_beam = xp.take_along_axis(from_beam, chosen, axis=1)  # (n, K)
            history = xp.take_along_axis(prefixes, chosen[:, :, None], axis=1)  # (n, K, L)
            if t == max_steps - 1:  # out of steps: live beams finish without <eos>
                finished.add(alive, history, scores, max_steps, lenpen, xp.isfinite(scores))
                break
            done = finished.count[alive] >= K                          # (n,)
            n_done = int(done.sum())                                   # the step's one host sync
            if n_done == n:
                break
            keep = xp.flatnonzero(~done) if n_done else xp.arange(n)  # (n',)
            if n_done:
                state.keep_sentences(keep)
                alive, scores, history = alive[keep], scores[keep], history[keep]
            rows = (keep[:, None] * K + from_beam[keep]).reshape(-1)   # (n' * K,)
            state.reorder(rows)
            tokens = tokens[keep].reshape(-1)
    best = xp.argsort(-finished.scores, axis=1, kind="stable")[:, :nbest]  # (N, nbest), best first
    out = xp.take_along_axis(finished.tokens, best[:, :, None], axis=1)  # (N, nbest, L)
    total = xp.take_along_axis(finished.total, best, axis=1)           # (N, nbest)
    return _unpack(out.reshape(-1, max_steps), total.reshape(-1), lenpen)  # (N * nbest, L), (N * nbest,)


def search(model, src, beam=1, max_steps=50, lenpen=1.0, nbest=1):
    """Greedy search for beam 1, beam search otherwise."""
    check_nbest(beam, nbest)
    if beam == 1:
        return greedy_search(model, src, max_steps=max_steps, lenpen=lenpen)
    return beam_search(model, src, beam=beam, max_steps=max_steps, lenpen=lenpen, nbest=nbest)
