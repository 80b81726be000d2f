"""Scoring given references: the log-probability a model (or an Ensemble) gives each one.

    log_probs = reference_log_probs(model, src, trg)   # padded ids (B, S), (B, T) -> (B, T-1)
    scores = score_references(model, src_lines, ref_lines, src_vocab, trg_vocab, tokenizer)
    scores[i]   # float32 array: log p of each token of reference i, <eos> last (None: not scored)

Teacher forcing, as in training: one forward pass per batch and model, the decoder reading
trg[:, :-1] and predicting trg[:, 1:], then log_softmax and the log-probability of each
reference token; no loop over tokens. The numbers are the ones the incremental decoder's
steps give those tokens. An Ensemble's log-probability of a token is the log of its models'
mean probability (ensemble.py:mean_of_probabilities), as when it decodes.

Input policies (tinynmt.translate's): a pair with no tokens on one side is not scored
(None); a side longer than the model's positions is cut to fit, and `warn` gets a line
saying how many tokens were dropped (a cut reference is scored up to the cut, then <eos>).

Legend: M models, B batch, S source length, T reference length (<sos>/<eos> included), V target vocabulary.
"""
import warnings
from typing import Callable, List, Optional, Sequence

import numpy as np

from ..autograd import log_softmax, no_grad
from ..backend import get_array_module, to_device, to_numpy
from ..data import Batches
from ..data.textfile import check_parallel
from .ensemble import mean_of_probabilities
from .incremental import eval_mode, max_positions, members
from .translator import encode_sentence


@no_grad()
def reference_log_probs(model, src, trg):
    """src (B, S), trg (B, T) padded ids framed by <sos>/<eos> -> the log-probability (B, T-1)
    of each token of trg[:, 1:] given the source and the tokens before it; 0 at padding."""
    models = members(model)
    per_model = []
    with eval_mode(*models):
        for m in models:
            logits, _ = m(src, trg[:, :-1])                                  # (B, T-1, V)
            log_probs = log_softmax(logits, axis=-1).data                    # (B, T-1, V)
            xp = get_array_module(log_probs)
            target = to_device(trg[:, 1:], m.device)                         # (B, T-1)
            per_model.append(xp.take_along_axis(log_probs, target[:, :, None], axis=2)[:, :, 0])  # (B, T-1)
    log_probs = mean_of_probabilities(xp.stack(per_model))                  # (M, B, T-1) -> (B, T-1)
    return log_probs * (target != models[0].trg_pad_idx)                     # (B, T-1)


def score_references(model, src_lines: Sequence[str], ref_lines: Sequence[str], src_vocab, trg_vocab,
                     tokenizer, batch_size=128, names: Optional[Sequence[str]] = None,
                     warn: Optional[Callable[[str], None]] = None) -> List[Optional[np.ndarray]]:
    """Per line, the log-probability of each reference token (float32, <eos> last), or None
    when the source or the reference has no tokens; `names` label warnings ("line 3")."""
    check_parallel(src_lines, ref_lines, "sources", "references")
    warn = warn or (lambda message: warnings.warn(message, stacklevel=3))
    names = names or [f"sentence {i + 1}" for i in range(len(src_lines))]
    positions = max_positions(model)                  # (source, target)
    results: List[Optional[np.ndarray]] = [None] * len(src_lines)
    todo, sides = [], ([], [])
    for i, pair in enumerate(zip(src_lines, ref_lines)):
        tokens = [tokenizer.tokenize(text) for text in pair]
        if not all(tokens):
            continue
        for what, toks, vocab, room, ids in zip(("source", "reference"), tokens, (src_vocab, trg_vocab),
                                                positions, sides):
            framed, _, dropped = encode_sentence(toks, vocab, room)
            if dropped:
                warn(f"{names[i]}: {what} of {len(toks)} tokens, more than the model's {room - 2} "
                     f"(max_length {room} with <sos>/<eos>): dropped the last {dropped}")
            ids.append(framed)
        todo.append(i)
    if todo:
        for batch in Batches(*sides, batch_size=batch_size):     # sorted by length: little padding
            log_probs = to_numpy(reference_log_probs(model, batch.src, batch.trg))  # (B, T-1), one copy
            lengths = (batch.trg[:, 1:] != members(model)[0].trg_pad_idx).sum(axis=1)  # (B,)
            for row, j in enumerate(batch.index.tolist()):
                results[todo[j]] = log_probs[row, :lengths[row]]
    return results
